//! The serdes of the platform's records: Avro in the schema registry's wire format on
//! the topics (subjects `<topic>-value`), or JSON for topology tests on the driver.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use streams_core::serde::{AvroSerde, CachedSchemaRegistry, JsonSerde, Serde, SerdeError};

use crate::records::{Customer, EnrichedOrder, Order, OrderEnriched, OrderValidation, Payment};
use crate::schemas::avsc;

/// One serde per record type, shared by the topologies.
#[derive(Clone)]
pub struct PlatformSerdes {
    /// `Order` values.
    pub order: Arc<dyn Serde<Order>>,
    /// `OrderValidation` values.
    pub validation: Arc<dyn Serde<OrderValidation>>,
    /// `Payment` values.
    pub payment: Arc<dyn Serde<Payment>>,
    /// `Customer` values.
    pub customer: Arc<dyn Serde<Customer>>,
    /// `OrderEnriched` values.
    pub order_enriched: Arc<dyn Serde<OrderEnriched>>,
    /// `EnrichedOrder` values.
    pub enriched_order: Arc<dyn Serde<EnrichedOrder>>,
}

impl PlatformSerdes {
    /// JSON serdes: for tests on the test driver, where no registry runs.
    pub fn json() -> Self {
        fn json<T: Serialize + DeserializeOwned + 'static>() -> Arc<dyn Serde<T>> {
            Arc::new(JsonSerde::<T>::new())
        }
        PlatformSerdes {
            order: json(),
            validation: json(),
            payment: json(),
            customer: json(),
            order_enriched: json(),
            enriched_order: json(),
        }
    }

    /// Avro serdes writing the schemas of `schemas/avro/` through `registry` (which
    /// registers them under `<topic>-value` when it auto-registers).
    pub fn avro(registry: CachedSchemaRegistry) -> Result<Self, SerdeError> {
        fn avro<T: Serialize + DeserializeOwned + 'static>(
            registry: &CachedSchemaRegistry,
            schema: &str,
        ) -> Result<Arc<dyn Serde<T>>, SerdeError> {
            Ok(Arc::new(AvroSerde::<T>::from_schema_str(
                registry.clone(),
                schema,
            )?))
        }
        Ok(PlatformSerdes {
            order: avro(&registry, avsc::ORDER)?,
            validation: avro(&registry, avsc::ORDER_VALIDATION)?,
            payment: avro(&registry, avsc::PAYMENT)?,
            customer: avro(&registry, avsc::CUSTOMER)?,
            order_enriched: avro(&registry, avsc::ORDER_ENRICHED)?,
            enriched_order: avro(&registry, avsc::ENRICHED_ORDER)?,
        })
    }
}
