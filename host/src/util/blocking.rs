//! Blocking from async code without stalling the runtime.

/// Runs a blocking wait without stalling the async runtime: on a
/// multi-threaded tokio worker the worker's other tasks move to another
/// thread for the duration (`block_in_place`, the same approach
/// wasmtime-wasi takes for its synchronous bindings). Elsewhere the caller
/// is already a plain thread and simply blocks.
pub fn wait_off_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
