package streams.bench;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * One benchmark case on Java Kafka Streams: builds the case's topology, runs it until
 * every input record has passed the source, and prints one JSON line with the figures
 * the comparison runner reads. The Rust side (streams-benches, bin `bench-case`) builds
 * the same cases on streams-core and prints the same line.
 *
 * <p>Arguments are {@code --name value} pairs: bootstrap, case, input, records,
 * table, right, yahoo-events, yahoo-ads, output, app-id, state-dir, commit-interval-ms,
 * cache-bytes, guarantee (at_least_once | exactly_once_v2).
 */
public final class StreamsBench {
    private static final long WINDOW_STORE_FETCH_MS = 1_000L;

    public static void main(String[] argv) throws Exception {
        long processStart = System.nanoTime();
        Map<String, String> args = parse(argv);
        String benchCase = args.get("case");
        long records = Long.parseLong(args.get("records"));

        AtomicLong seen = new AtomicLong();
        AtomicLong firstNanos = new AtomicLong();
        AtomicLong firstCpu = new AtomicLong();
        CountDownLatch done = new CountDownLatch(1);
        long[] end = new long[2];
        Counter counter = () -> {
            long n = seen.incrementAndGet();
            if (n == 1) {
                firstNanos.set(System.nanoTime());
                firstCpu.set(cpuNanos());
            }
            if (n == records) {
                end[0] = System.nanoTime();
                end[1] = cpuNanos();
                done.countDown();
            }
        };

        StreamsBuilder builder = new StreamsBuilder();
        build(builder, benchCase, args, counter);

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("bootstrap"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(args.get("commit-interval-ms")));
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, Long.parseLong(args.get("cache-bytes")));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.get("guarantee"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("state-dir"));
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        // Logging is off (slf4j-nop): report a failed stream thread here and stop waiting.
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("stream thread failed: " + e);
            e.printStackTrace();
            done.countDown();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        boolean finished = done.await(Long.parseLong(args.getOrDefault("timeout-secs", "600")), TimeUnit.SECONDS);
        streams.close(Duration.ofSeconds(60));
        streams.cleanUp();
        if (!finished || end[0] == 0) {
            System.err.printf("case %s: only %d of %d records arrived before the timeout%n",
                    benchCase, seen.get(), records);
            System.exit(2);
        }
        System.out.printf(
                "{\"case\":\"%s\",\"records\":%d,\"startup_ms\":%.3f,\"elapsed_ms\":%.3f,\"cpu_ms\":%.3f}%n",
                benchCase, records,
                (firstNanos.get() - processStart) / 1e6,
                (end[0] - firstNanos.get()) / 1e6,
                (end[1] - firstCpu.get()) / 1e6);
        System.out.flush();
        System.exit(0);
    }

    /** Called once per input record as it passes the source. */
    private interface Counter {
        void count();
    }

    private static void build(StreamsBuilder b, String benchCase, Map<String, String> args, Counter counter) {
        Consumed<Integer, byte[]> consumed = Consumed.with(Serdes.Integer(), Serdes.ByteArray());
        String input = args.get("input");
        switch (benchCase) {
            case "streamprocess" -> b.stream(input, consumed).foreach((k, v) -> counter.count());
            case "streamprocesswithsink" -> b.stream(input, consumed)
                    .peek((k, v) -> counter.count())
                    .to(args.get("output"), Produced.with(Serdes.Integer(), Serdes.ByteArray()));
            case "streamprocesswithstatestore" -> {
                b.addStateStore(Stores.keyValueStoreBuilder(
                        Stores.persistentKeyValueStore("store"), Serdes.Integer(), Serdes.ByteArray()));
                b.stream(input, consumed).peek((k, v) -> counter.count())
                        .process(KeyValueUpdater::new, "store");
            }
            case "streamprocesswithwindowstore" -> {
                b.addStateStore(Stores.windowStoreBuilder(
                        Stores.persistentWindowStore("store", Duration.ofMinutes(1), Duration.ofSeconds(1), false),
                        Serdes.Integer(), Serdes.ByteArray()));
                b.stream(input, consumed).peek((k, v) -> counter.count())
                        .process(WindowUpdater::new, "store");
            }
            case "streamcount" -> b.stream(input, consumed).peek((k, v) -> counter.count())
                    .groupByKey().count(Materialized.as("count"));
            case "streamcountwindowed" -> b.stream(input, consumed).peek((k, v) -> counter.count())
                    .groupByKey()
                    .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(1)).advanceBy(Duration.ofMillis(500)))
                    .count(Materialized.as("windowed-count"));
            case "streamtablejoin" -> {
                KTable<Integer, byte[]> table = b.table(args.get("table"), consumed, Materialized.as("table"));
                b.stream(input, consumed).peek((k, v) -> counter.count())
                        .leftJoin(table, (v, t) -> v)
                        .to(args.get("output"), Produced.with(Serdes.Integer(), Serdes.ByteArray()));
            }
            case "streamstreamjoin" -> {
                KStream<Integer, byte[]> right = b.stream(args.get("right"), consumed);
                b.stream(input, consumed).peek((k, v) -> counter.count())
                        .leftJoin(right, (v, r) -> v,
                                JoinWindows.ofTimeDifferenceWithNoGrace(Duration.ofSeconds(10)),
                                StreamJoined.with(Serdes.Integer(), Serdes.ByteArray(), Serdes.ByteArray()))
                        .to(args.get("output"), Produced.with(Serdes.Integer(), Serdes.ByteArray()));
            }
            case "tabletablejoin" -> {
                KTable<Integer, byte[]> right = b.table(args.get("table"), consumed, Materialized.as("right"));
                b.stream(input, consumed).peek((k, v) -> counter.count())
                        .toTable(Materialized.<Integer, byte[], KeyValueStore<Bytes, byte[]>>as("left")
                                .withKeySerde(Serdes.Integer())
                                .withValueSerde(Serdes.ByteArray()))
                        .leftJoin(right, (l, r) -> l)
                        .toStream()
                        .to(args.get("output"), Produced.with(Serdes.Integer(), Serdes.ByteArray()));
            }
            case "yahoo" -> yahoo(b, args, counter);
            default -> throw new IllegalArgumentException("unknown case " + benchCase);
        }
    }

    /**
     * The ad-campaign pipeline: events keyed by ad id with a value whose first byte is the
     * event type (0 = view) and next 8 bytes the event time; keep views, project to the
     * event time, join the ad table (ad id to 4-byte campaign id), re-key by campaign and
     * count per campaign in 10-second windows.
     */
    private static void yahoo(StreamsBuilder b, Map<String, String> args, Counter counter) {
        KTable<Integer, Integer> ads = b.table(args.get("yahoo-ads"),
                Consumed.with(Serdes.Integer(), Serdes.Integer()), Materialized.as("ads"));
        b.stream(args.get("input"), Consumed.with(Serdes.Integer(), Serdes.ByteArray()))
                .peek((k, v) -> counter.count())
                .filter((ad, event) -> event[0] == 0)
                .mapValues(event -> ByteBuffer.wrap(event, 1, 8).getLong())
                .join(ads, (time, campaign) -> campaign)
                .map((ad, campaign) -> KeyValue.pair(campaign, ad))
                .groupByKey(Grouped.with(Serdes.Integer(), Serdes.Integer()))
                .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(10)))
                .count(Materialized.as("campaign-counts"));
    }

    /** Reads and rewrites each record's key in a key-value store. */
    private static final class KeyValueUpdater implements Processor<Integer, byte[], Void, Void> {
        private KeyValueStore<Integer, byte[]> store;

        @Override
        public void init(ProcessorContext<Void, Void> context) {
            store = context.getStateStore("store");
        }

        @Override
        public void process(Record<Integer, byte[]> record) {
            byte[] old = store.get(record.key());
            store.put(record.key(), old == null ? record.value() : record.value());
        }
    }

    /** Reads a key's windows of the last second, then writes the record's window. */
    private static final class WindowUpdater implements Processor<Integer, byte[], Void, Void> {
        private WindowStore<Integer, byte[]> store;

        @Override
        public void init(ProcessorContext<Void, Void> context) {
            store = context.getStateStore("store");
        }

        @Override
        public void process(Record<Integer, byte[]> record) {
            long ts = record.timestamp();
            try (WindowStoreIterator<byte[]> it = store.fetch(record.key(), ts - WINDOW_STORE_FETCH_MS, ts)) {
                while (it.hasNext()) {
                    it.next();
                }
            }
            store.put(record.key(), record.value(), ts);
        }
    }

    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private static Map<String, String> parse(String[] argv) {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value pairs, got " + argv[i]);
            }
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        for (String required : new String[] {"bootstrap", "case", "input", "records", "app-id", "state-dir",
                "commit-interval-ms", "cache-bytes", "guarantee"}) {
            if (!args.containsKey(required)) {
                throw new IllegalArgumentException("missing --" + required);
            }
        }
        try {
            Files.createDirectories(Path.of(args.get("state-dir")));
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot create the state directory", e);
        }
        return args;
    }
}
