//! A hard time limit for a test body.

use std::sync::mpsc;
use std::time::Duration;

/// Runs `body` on its own thread and returns its result, or panics if it
/// takes longer than `limit`, so a test against the broker can never hang.
///
/// A panic inside `body` is passed on unchanged. After a timeout the body's
/// thread is left to finish on its own.
pub fn within<T, F>(limit: Duration, body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (sender, receiver) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("test-body".to_string())
        .spawn(move || {
            let _ = sender.send(body());
        })
        .expect("cannot spawn the test body's thread");
    match receiver.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the test body ended without sending its result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within its time limit of {limit:?}")
        }
    }
}
