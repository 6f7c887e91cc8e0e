//! The built-in dispatchers: how a retraining job reaches what runs it.
//!
//! Each dispatcher implements [`monitor_core::dispatch::Dispatcher`], the
//! trait that outside crates implement too, and lives in one file that also
//! registers its `kind`; [`register_builtin_dispatchers`] calls those
//! registrations, and nothing else in the crate lists the kinds. So a new
//! dispatcher costs one file and one line here.
//!
//! | kind | dispatcher | what it does |
//! | --- | --- | --- |
//! | `command` | [`CommandDispatcher`] | runs a local program per job |
//! | `http` | [`HttpDispatcher`] | submits the job to Airflow, Argo Workflows, GitHub Actions or any HTTP API (`preset = "airflow"`, `"argo"`, `"github"`, `"generic"`) |
//! | (code only) | [`ChannelDispatcher`] | hands jobs to the embedding program over a channel |

mod channel;
mod command;
mod http;
mod placeholders;

use monitor_core::dispatch::DispatcherRegistry;

pub use self::channel::ChannelDispatcher;
pub use self::command::CommandDispatcher;
pub use self::http::{HttpDispatcher, HttpPreset};

/// Registers the kinds `command` and `http` in `registry`.
pub fn register_builtin_dispatchers(registry: &mut DispatcherRegistry) {
    command::register(registry);
    http::register(registry);
}

/// A registry with the built-in dispatchers, ready for more: the
/// `dispatchers` of a [`BuildContext`](monitor_core::registry::BuildContext)
/// that builds retrain observers.
///
/// ```
/// use monitor_core::registry::BuildContext;
///
/// let ctx = BuildContext { dispatchers: monitor_observers::builtin_dispatchers(), ..Default::default() };
/// assert_eq!(ctx.dispatchers.kinds().collect::<Vec<_>>(), ["command", "http"]);
/// ```
pub fn builtin_dispatchers() -> DispatcherRegistry {
    let mut registry = DispatcherRegistry::new();
    register_builtin_dispatchers(&mut registry);
    registry
}
