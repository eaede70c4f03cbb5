//! Running a command's work on a worker of rayon's pool ([`on_pool`]), with the command's
//! boxed errors.

use equivariant::util::on_pool;

/// `work` on a worker of rayon's pool: its parallel loops then start on that thread, with no
/// hand-over to the pool per loop or per model call (`equivariant md`'s steps, the graph
/// benchmarks' timed calls). The error crosses threads as its message (a boxed error need
/// not be `Send`), which is all the binary prints of it.
pub fn on_worker<R: Send>(
    work: impl FnOnce() -> Result<R, Box<dyn std::error::Error>> + Send,
) -> Result<R, Box<dyn std::error::Error>> {
    on_pool(|| work().map_err(|e| e.to_string())).map_err(Into::into)
}
