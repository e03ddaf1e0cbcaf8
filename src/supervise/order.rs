//! Start order: an app starts once every app it depends on is ready (its web processes
//! answer); apps without dependencies start at once.

/// The groups (apps) to start now: not started yet, every dependency started and ready.
pub(super) fn startable(
    started: &[bool],
    deps: &[Vec<usize>],
    ready: impl Fn(usize) -> bool,
) -> Vec<usize> {
    (0..started.len())
        .filter(|&g| {
            !started[g]
                && deps
                    .get(g)
                    .is_none_or(|d| d.iter().all(|&d| started.get(d) == Some(&true) && ready(d)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_without_dependencies_start_together_and_the_rest_wait() {
        let deps = vec![vec![], vec![0], vec![], vec![1, 2]];
        assert_eq!(startable(&[false; 4], &deps, |_| false), [0, 2]);
        let started = [true, false, true, false];
        assert_eq!(startable(&started, &deps, |_| false), Vec::<usize>::new());
        assert_eq!(startable(&started, &deps, |g| g == 0), [1]);
        let started = [true, true, true, false];
        assert_eq!(startable(&started, &deps, |g| g != 2), Vec::<usize>::new());
        assert_eq!(startable(&started, &deps, |_| true), [3]);
    }
}
