//! Per-thread scratch memory that the kernels reuse from call to call, so that a training
//! step does not allocate (and the allocator does not hand back, zero and fault in again)
//! megabytes of unfolded columns for every layer and batch.

use std::cell::RefCell;

thread_local! {
    static BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with `N` slices of the given lengths, carved from this thread's scratch buffer
/// (grown as needed; it keeps the largest size asked for). What the slices hold on entry is
/// left over from earlier calls: `f` must write each element before reading it.
pub(crate) fn with<const N: usize, R>(lens: [usize; N], f: impl FnOnce([&mut [f32]; N]) -> R) -> R {
    let total = lens.iter().sum::<usize>();
    // Taken out of the cell while `f` runs, so a nested call (none today) gets its own.
    let mut buf = BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if buf.len() < total {
        buf.resize(total, 0.0);
    }
    let result = {
        let mut rest = &mut buf[..];
        let parts: [&mut [f32]; N] = std::array::from_fn(|i| {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(lens[i]);
            rest = tail;
            part
        });
        f(parts)
    };
    BUFFER.with(|b| {
        let mut slot = b.borrow_mut();
        if slot.len() < buf.len() {
            *slot = buf;
        }
    });
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn slices_have_the_lengths_asked_for_and_do_not_overlap() {
        super::with([3, 0, 5], |[a, b, c]| {
            assert_eq!((a.len(), b.len(), c.len()), (3, 0, 5));
            a.fill(1.0);
            c.fill(2.0);
            assert_eq!(a, &[1.0; 3]);
        });
        // Reused: a smaller request is served from the same buffer, a nested one from its own.
        super::with([4], |[a]| {
            a.fill(7.0);
            super::with([2], |[b]| {
                b.fill(9.0);
                assert_eq!(b, &[9.0; 2]);
            });
            assert_eq!(a, &[7.0; 4]);
        });
    }
}
