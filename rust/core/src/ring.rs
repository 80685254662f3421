//! A preallocated multi-channel sample ring with absolute indices, a time base,
//! declared gaps and independent readers that count every sample they miss.
//!
//! The ring keeps the newest `capacity` sample indices of `channels` channels,
//! stored channel-major (`channels x capacity`). Every sample has an absolute
//! index (`u64`, never reused); `written` is the index of the next sample.
//!
//! The producer may declare a *gap*: the index advances without data, either
//! explicitly (`gap = k` samples) or through a forward jump of the block's start
//! time `t0`. Readers keep their own [`ReaderCursor`]. A read returns the
//! samples from the cursor up to the next gap, and counts what the reader was
//! owed but cannot get: samples overwritten before it read them (*overrun*) and
//! samples that fell into declared gaps. For every index from the cursor's start
//! on, exactly one of three things happens: it is returned once, in order, or
//! it is counted as overrun, or it is counted as gap.
//!
//! Reading takes `&self`: the ring is meant to sit behind an `RwLock`, with one
//! producer taking the write lock to push and many readers copying in parallel
//! under the read lock.

use std::collections::VecDeque;

use thiserror::Error;

/// Errors of the sample ring; the bindings raise them as `isthmus.SignalError`.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RingError {
    #[error("channels must be at least 1, got {0}")]
    NoChannels(usize),
    #[error("capacity must be at least 1 sample, got {0}")]
    NoCapacity(usize),
    #[error("sample_rate must be a finite number of Hz above 0, got {0}")]
    BadSampleRate(f64),
    #[error("ring of {channels} x {capacity} samples is too large to allocate")]
    TooLarge { channels: usize, capacity: usize },
    #[error("block holds {got} values, expected {channels} channels x {per_channel} samples")]
    BlockSize {
        channels: usize,
        per_channel: usize,
        got: usize,
    },
    #[error("t0 must be a finite time in seconds, got {0}")]
    BadTime(f64),
    #[error(
        "t0 = {t0} s goes backwards: the next sample is expected at {expected} s \
         ({samples_early:.1} samples earlier than that); samples cannot be rewritten"
    )]
    TimeWentBackwards {
        t0: f64,
        expected: f64,
        samples_early: f64,
    },
    #[error("sample index would overflow u64 (written {written}, gap {gap}, block {block})")]
    IndexOverflow { written: u64, gap: u64, block: u64 },
    #[error("latest({requested}) exceeds the ring capacity of {capacity} samples")]
    LatestBeyondCapacity { requested: usize, capacity: usize },
    #[error("latest({requested}) exceeds the {written} samples written so far")]
    LatestBeyondWritten { requested: usize, written: u64 },
    /// The copy a read or `latest` asked for does not fit in memory (bindings: MemoryError).
    #[error("cannot allocate {channels} x {samples} samples for the copy: out of memory")]
    OutOfMemory { channels: usize, samples: usize },
}

/// A sample type the ring can store: `f32` or `f64`. Gap slots hold NaN.
pub trait Sample: Copy + Send + Sync + 'static {
    /// The value stored in the slots of declared gaps.
    const MISSING: Self;
}

impl Sample for f32 {
    const MISSING: Self = f32::NAN;
}

impl Sample for f64 {
    const MISSING: Self = f64::NAN;
}

/// A declared gap `[start, end)` with the number of gap samples before `start`.
#[derive(Debug, Clone, Copy)]
struct GapSpan {
    start: u64,
    end: u64,
    gaps_before: u64,
}

/// One point where the producer fixed the time base: index `index` at `time` seconds.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    index: u64,
    time: f64,
}

/// Drift of an explicit `t0` below this fraction of a sample period is rounding
/// noise (a Unix time in f64 resolves about 0.24 us) and does not re-anchor.
const ANCHOR_TOLERANCE: f64 = 0.01;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushInfo {
    /// Index of the block's first sample.
    pub start_index: u64,
    /// Gap samples declared before the block (explicit `gap` plus any `t0` jump).
    pub gap: u64,
}

/// What one read returned and what it lost, as counts of samples per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadInfo {
    /// Index of the first returned sample (equals the cursor after skipping losses).
    pub start_index: u64,
    /// Number of samples returned per channel.
    pub len: usize,
    /// Samples this reader was owed that were overwritten before it read them.
    pub lost_overrun: u64,
    /// Samples this reader was owed that fell into declared gaps.
    pub lost_gap: u64,
}

/// A reader's private position in the ring, with its running totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderCursor {
    position: u64,
    /// Number of gap samples at indices below `position`: lets the reader count
    /// gaps it skipped even after the ring has forgotten their spans.
    gaps_before: u64,
    pub total_read: u64,
    pub total_lost_overrun: u64,
    pub total_lost_gap: u64,
}

impl ReaderCursor {
    /// Index of the next sample this reader will get (or count as lost).
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// The multi-channel ring. See the module documentation.
#[derive(Debug, Clone)]
pub struct SampleRing<T: Sample> {
    channels: usize,
    capacity: usize,
    sample_rate: f64,
    /// `channels x capacity`, channel-major; sample `i` of channel `c` lives at
    /// `c * capacity + i % capacity`.
    data: Vec<T>,
    written: u64,
    /// Gap spans that still reach into the kept window, merged when adjacent.
    gaps: VecDeque<GapSpan>,
    total_gap: u64,
    /// Time anchors, oldest first; never empty.
    anchors: VecDeque<Anchor>,
    /// False until the producer first gives `t0`: until then times are seconds from index 0.
    time_anchored: bool,
}

impl<T: Sample> SampleRing<T> {
    /// A ring of `channels x capacity` samples at `sample_rate` Hz, filled with NaN.
    pub fn new(channels: usize, capacity: usize, sample_rate: f64) -> Result<Self, RingError> {
        if channels == 0 {
            return Err(RingError::NoChannels(channels));
        }
        if capacity == 0 {
            return Err(RingError::NoCapacity(capacity));
        }
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(RingError::BadSampleRate(sample_rate));
        }
        let too_large = RingError::TooLarge { channels, capacity };
        let len = channels.checked_mul(capacity).ok_or(too_large.clone())?;
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| too_large)?;
        data.resize(len, T::MISSING);
        Ok(Self {
            channels,
            capacity,
            sample_rate,
            data,
            written: 0,
            gaps: VecDeque::new(),
            total_gap: 0,
            anchors: VecDeque::from([Anchor {
                index: 0,
                time: 0.0,
            }]),
            time_anchored: false,
        })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Index of the next sample to be written (samples plus gap samples so far).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Total gap samples declared so far.
    pub fn total_gap(&self) -> u64 {
        self.total_gap
    }

    /// Oldest index still held in the ring.
    pub fn oldest(&self) -> u64 {
        self.written.saturating_sub(self.capacity as u64)
    }

    /// Time in seconds of sample `index`: exact for indices still in the ring and
    /// for future ones (from the newest anchor); older indices are extrapolated.
    pub fn time_of(&self, index: u64) -> f64 {
        // Anchors are sorted by index; use the last one at or before `index`.
        let after = self.anchors.partition_point(|a| a.index <= index);
        let anchor = self.anchors[after.saturating_sub(1)];
        anchor.time + (index as f64 - anchor.index as f64) / self.sample_rate
    }

    /// Number of gap samples at indices below `index`, for `index >= oldest()`.
    fn gaps_below(&self, index: u64) -> u64 {
        let first_reaching = self.gaps.partition_point(|g| g.end <= index);
        match self.gaps.get(first_reaching) {
            Some(g) if g.start < index => g.gaps_before + (index - g.start),
            Some(g) => g.gaps_before,
            None => self.total_gap,
        }
    }

    /// The gap span containing `index`, if any.
    fn gap_at(&self, index: u64) -> Option<GapSpan> {
        let first_reaching = self.gaps.partition_point(|g| g.end <= index);
        self.gaps
            .get(first_reaching)
            .copied()
            .filter(|g| g.start <= index)
    }

    /// Start of the first gap at or after `index`, or `written` if none.
    fn next_gap_start(&self, index: u64) -> u64 {
        let first_reaching = self.gaps.partition_point(|g| g.end <= index);
        self.gaps
            .get(first_reaching)
            .map_or(self.written, |g| g.start.max(index))
    }

    /// Append a block of `per_channel` samples per channel, laid out channel-major
    /// (`block[c * per_channel + i]`). `gap` samples are skipped first; `t0` is the
    /// time of the block's first sample: a forward jump of more than half a sample
    /// period beyond the expected time adds `round(jump * rate)` gap samples, a jump
    /// back of more than half a period is an error, smaller drift re-anchors the
    /// time base. The first `t0` ever given anchors the time base without a check.
    /// On error the ring is unchanged.
    pub fn push(
        &mut self,
        block: &[T],
        per_channel: usize,
        t0: Option<f64>,
        gap: u64,
    ) -> Result<PushInfo, RingError> {
        if per_channel.checked_mul(self.channels) != Some(block.len()) {
            return Err(RingError::BlockSize {
                channels: self.channels,
                per_channel,
                got: block.len(),
            });
        }
        let overflow = RingError::IndexOverflow {
            written: self.written,
            gap,
            block: per_channel as u64,
        };
        let mut gap_total = gap;
        let mut start = self.written.checked_add(gap).ok_or(overflow.clone())?;
        let mut new_anchor = None;
        if let Some(t0) = t0 {
            if !t0.is_finite() {
                return Err(RingError::BadTime(t0));
            }
            if self.time_anchored {
                let expected = self.time_of(start);
                let jump_samples = (t0 - expected) * self.sample_rate;
                if jump_samples < -0.5 {
                    return Err(RingError::TimeWentBackwards {
                        t0,
                        expected,
                        samples_early: -jump_samples,
                    });
                }
                if jump_samples > 0.5 {
                    // `as` saturates; a absurd jump then fails the overflow check.
                    let extra = jump_samples.round() as u64;
                    gap_total = gap_total.checked_add(extra).ok_or(overflow.clone())?;
                    start = start.checked_add(extra).ok_or(overflow.clone())?;
                    new_anchor = Some(Anchor {
                        index: start,
                        time: t0,
                    });
                } else if jump_samples.abs() > ANCHOR_TOLERANCE {
                    new_anchor = Some(Anchor {
                        index: start,
                        time: t0,
                    });
                }
            } else {
                new_anchor = Some(Anchor {
                    index: start,
                    time: t0,
                });
            }
        }
        let end = start.checked_add(per_channel as u64).ok_or(overflow)?;

        // Validated: apply.
        if gap_total > 0 {
            self.record_gap(gap_total);
        }
        if let Some(anchor) = new_anchor {
            if !self.time_anchored {
                self.anchors.clear();
                self.time_anchored = true;
            }
            self.anchors.push_back(anchor);
        }
        self.write_block(block, per_channel, start);
        self.written = end;
        self.forget_before_oldest();
        Ok(PushInfo {
            start_index: start,
            gap: gap_total,
        })
    }

    /// Declare `len` gap samples at `written` and fill their slots with NaN.
    fn record_gap(&mut self, len: u64) {
        let start = self.written;
        let end = start + len;
        match self.gaps.back_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => self.gaps.push_back(GapSpan {
                start,
                end,
                gaps_before: self.total_gap,
            }),
        }
        self.total_gap += len;
        let fill = len.min(self.capacity as u64) as usize;
        let first = end - fill as u64;
        for c in 0..self.channels {
            let row = &mut self.data[c * self.capacity..(c + 1) * self.capacity];
            fill_wrapped(row, first, fill, T::MISSING);
        }
        self.written = end;
    }

    /// Copy a channel-major block into the slots of indices `start..start + n`.
    /// A block longer than the ring keeps only its newest `capacity` samples.
    fn write_block(&mut self, block: &[T], n: usize, start: u64) {
        let keep = n.min(self.capacity);
        let skip = n - keep;
        let first = start + skip as u64;
        for c in 0..self.channels {
            let src = &block[c * n + skip..(c + 1) * n];
            let row = &mut self.data[c * self.capacity..(c + 1) * self.capacity];
            let pos = (first % self.capacity as u64) as usize;
            let head = keep.min(self.capacity - pos);
            row[pos..pos + head].copy_from_slice(&src[..head]);
            row[..keep - head].copy_from_slice(&src[head..]);
        }
    }

    /// Drop gap spans and time anchors that no longer reach into the kept window,
    /// so bookkeeping stays bounded however long the stream runs.
    fn forget_before_oldest(&mut self) {
        let oldest = self.oldest();
        while self.gaps.front().is_some_and(|g| g.end <= oldest) {
            self.gaps.pop_front();
        }
        while self.anchors.len() > 1 && self.anchors[1].index <= oldest {
            self.anchors.pop_front();
        }
    }

    /// A cursor at the next index to be written: the reader gets what is pushed from now on.
    pub fn cursor_at_end(&self) -> ReaderCursor {
        ReaderCursor {
            position: self.written,
            gaps_before: self.total_gap,
            total_read: 0,
            total_lost_overrun: 0,
            total_lost_gap: 0,
        }
    }

    /// A cursor at the oldest index still in the ring.
    pub fn cursor_at_oldest(&self) -> ReaderCursor {
        let oldest = self.oldest();
        ReaderCursor {
            position: oldest,
            gaps_before: self.gaps_below(oldest),
            total_read: 0,
            total_lost_overrun: 0,
            total_lost_gap: 0,
        }
    }

    /// Samples a read loop could still get from `cursor` (not counting losses).
    pub fn available(&self, cursor: &ReaderCursor) -> u64 {
        let from = cursor.position.max(self.oldest());
        (self.written - from) - (self.total_gap - self.gaps_below(from))
    }

    /// Plan a read: skip what `cursor` lost, then take up to `max_n` samples up to
    /// the next gap. Returns the info and the cursor's new `gaps_before`.
    fn plan_read(&self, cursor: &ReaderCursor, max_n: usize) -> (ReadInfo, u64) {
        let oldest = self.oldest();
        let mut start = cursor.position.max(oldest);
        let mut gaps_at_start = if start == cursor.position {
            cursor.gaps_before
        } else {
            self.gaps_below(start)
        };
        let skipped_gap = gaps_at_start - cursor.gaps_before;
        let lost_overrun = (start - cursor.position) - skipped_gap;
        let mut lost_gap = skipped_gap;
        if let Some(g) = self.gap_at(start) {
            lost_gap += g.end - start;
            gaps_at_start += g.end - start;
            start = g.end;
        }
        let run_end = self.next_gap_start(start);
        let len = (run_end - start).min(max_n as u64) as usize;
        (
            ReadInfo {
                start_index: start,
                len,
                lost_overrun,
                lost_gap,
            },
            gaps_at_start,
        )
    }

    /// Read for `cursor`: append the new samples channel-major (`channels x len`)
    /// to `out` and advance the cursor. Samples returned by one read are
    /// consecutive: a read stops at the start of a gap, and the next read counts
    /// the gap in `lost_gap`.
    ///
    /// Fails only when `out` cannot grow by the copy; the cursor then stays where it was.
    pub fn read_into(
        &self,
        cursor: &mut ReaderCursor,
        max_n: usize,
        out: &mut Vec<T>,
    ) -> Result<ReadInfo, RingError> {
        let (info, gaps_at_start) = self.plan_read(cursor, max_n);
        self.reserve_copy(out, info.len)?;
        for c in 0..self.channels {
            self.copy_channel(c, info.start_index, info.len, out);
        }
        cursor.position = info.start_index + info.len as u64;
        cursor.gaps_before = gaps_at_start;
        cursor.total_read += info.len as u64;
        cursor.total_lost_overrun += info.lost_overrun;
        cursor.total_lost_gap += info.lost_gap;
        Ok(info)
    }

    /// Room in `out` for `samples` per channel, without aborting when memory runs out.
    fn reserve_copy(&self, out: &mut Vec<T>, samples: usize) -> Result<(), RingError> {
        let oom = || RingError::OutOfMemory {
            channels: self.channels,
            samples,
        };
        let values = samples.checked_mul(self.channels).ok_or_else(oom)?;
        out.try_reserve_exact(values).map_err(|_| oom())
    }

    /// Append samples `start..start + len` of channel `c` (all in the ring) to `out`.
    fn copy_channel(&self, c: usize, start: u64, len: usize, out: &mut Vec<T>) {
        let row = &self.data[c * self.capacity..(c + 1) * self.capacity];
        let pos = (start % self.capacity as u64) as usize;
        let head = len.min(self.capacity - pos);
        out.extend_from_slice(&row[pos..pos + head]);
        out.extend_from_slice(&row[..len - head]);
    }

    /// Append a copy of the newest `n` samples per channel (`channels x n`) to `out`;
    /// slots of declared gaps hold NaN.
    pub fn latest_into(&self, n: usize, out: &mut Vec<T>) -> Result<(), RingError> {
        if n > self.capacity {
            return Err(RingError::LatestBeyondCapacity {
                requested: n,
                capacity: self.capacity,
            });
        }
        if n as u64 > self.written {
            return Err(RingError::LatestBeyondWritten {
                requested: n,
                written: self.written,
            });
        }
        self.reserve_copy(out, n)?;
        let start = self.written - n as u64;
        for c in 0..self.channels {
            self.copy_channel(c, start, n, out);
        }
        Ok(())
    }
}

/// Fill `len` slots of a ring row starting at the slot of absolute index `first`.
fn fill_wrapped<T: Copy>(row: &mut [T], first: u64, len: usize, value: T) {
    let cap = row.len();
    let pos = (first % cap as u64) as usize;
    let head = len.min(cap - pos);
    row[pos..pos + head].fill(value);
    row[..len - head].fill(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(start: u64, n: usize) -> Vec<f64> {
        (start..start + n as u64).map(|i| i as f64).collect()
    }

    fn read_all(ring: &SampleRing<f64>, cur: &mut ReaderCursor) -> (ReadInfo, Vec<f64>) {
        let mut out = Vec::new();
        let info = ring.read_into(cur, usize::MAX, &mut out).unwrap();
        (info, out)
    }

    #[test]
    fn rejects_bad_construction() {
        assert_eq!(
            SampleRing::<f32>::new(0, 8, 1.0).unwrap_err(),
            RingError::NoChannels(0)
        );
        assert_eq!(
            SampleRing::<f32>::new(1, 0, 1.0).unwrap_err(),
            RingError::NoCapacity(0)
        );
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                SampleRing::<f32>::new(1, 8, rate),
                Err(RingError::BadSampleRate(_))
            ));
        }
        assert!(matches!(
            SampleRing::<f64>::new(usize::MAX, 2, 1.0),
            Err(RingError::TooLarge { .. })
        ));
    }

    #[test]
    fn wraps_around_and_reads_in_order() {
        let mut ring = SampleRing::<f64>::new(2, 5, 10.0).unwrap();
        let mut cur = ring.cursor_at_end();
        let mut next = 0u64;
        for n in [3usize, 4, 2, 5, 1] {
            let mut block = ramp(next, n);
            block.extend(ramp(1000 + next, n));
            ring.push(&block, n, None, 0).unwrap();
            let (info, out) = read_all(&ring, &mut cur);
            assert_eq!(info.start_index, next);
            assert_eq!(info.len, n);
            assert_eq!((info.lost_overrun, info.lost_gap), (0, 0));
            assert_eq!(out, block);
            next += n as u64;
        }
        assert_eq!(ring.written(), next);
        assert_eq!(cur.total_read, next);
        let mut latest = Vec::new();
        ring.latest_into(5, &mut latest).unwrap();
        assert_eq!(latest, [ramp(10, 5), ramp(1010, 5)].concat());
    }

    #[test]
    fn counts_overrun_and_keeps_newest() {
        let mut ring = SampleRing::<f64>::new(1, 4, 1.0).unwrap();
        let mut cur = ring.cursor_at_end();
        ring.push(&ramp(0, 3), 3, None, 0).unwrap();
        ring.push(&ramp(3, 7), 7, None, 0).unwrap(); // longer than the ring
        let (info, out) = read_all(&ring, &mut cur);
        assert_eq!(info.lost_overrun, 6);
        assert_eq!(info.start_index, 6);
        assert_eq!(out, ramp(6, 4));
        assert_eq!(cur.total_lost_overrun + cur.total_read, 10);
    }

    #[test]
    fn max_n_limits_a_read() {
        let mut ring = SampleRing::<f64>::new(1, 16, 1.0).unwrap();
        let mut cur = ring.cursor_at_end();
        ring.push(&ramp(0, 10), 10, None, 0).unwrap();
        let mut out = Vec::new();
        let info = ring.read_into(&mut cur, 4, &mut out).unwrap();
        assert_eq!((info.start_index, info.len), (0, 4));
        assert_eq!(ring.available(&cur), 6);
        out.clear();
        let info = ring.read_into(&mut cur, 100, &mut out).unwrap();
        assert_eq!((info.start_index, info.len), (4, 6));
        assert_eq!(out, ramp(4, 6));
    }

    #[test]
    fn declared_gap_is_counted_and_reads_stop_at_it() {
        let mut ring = SampleRing::<f64>::new(1, 32, 100.0).unwrap();
        let mut cur = ring.cursor_at_end();
        ring.push(&ramp(0, 4), 4, None, 0).unwrap();
        let info = ring.push(&ramp(7, 2), 2, None, 3).unwrap();
        assert_eq!(
            info,
            PushInfo {
                start_index: 7,
                gap: 3
            }
        );
        assert_eq!(ring.available(&cur), 6);
        let (first, out) = read_all(&ring, &mut cur);
        assert_eq!((first.start_index, first.len, first.lost_gap), (0, 4, 0));
        assert_eq!(out, ramp(0, 4));
        let (second, out) = read_all(&ring, &mut cur);
        assert_eq!((second.start_index, second.len, second.lost_gap), (7, 2, 3));
        assert_eq!(out, ramp(7, 2));
        assert!((ring.time_of(7) - 0.07).abs() < 1e-12);
        let mut latest = Vec::new();
        ring.latest_into(6, &mut latest).unwrap();
        assert_eq!(latest[0], 3.0);
        assert!(latest[1..4].iter().all(|v| v.is_nan()));
        assert_eq!(latest[4..], [7.0, 8.0]);
    }

    #[test]
    fn overrun_across_a_gap_splits_the_count() {
        let mut ring = SampleRing::<f64>::new(1, 4, 1.0).unwrap();
        let mut cur = ring.cursor_at_end();
        ring.push(&ramp(0, 3), 3, None, 0).unwrap();
        ring.push(&[], 0, None, 5).unwrap(); // gap 3..8
        ring.push(&ramp(8, 6), 6, None, 0).unwrap(); // data 8..14, ring holds 10..14
        let (info, out) = read_all(&ring, &mut cur);
        assert_eq!(info.lost_gap, 5);
        assert_eq!(info.lost_overrun, 3 + 2);
        assert_eq!(info.start_index, 10);
        assert_eq!(out, ramp(10, 4));
    }

    #[test]
    fn gap_spans_are_forgotten_but_still_counted() {
        let mut ring = SampleRing::<f64>::new(1, 4, 1.0).unwrap();
        let mut cur = ring.cursor_at_end();
        for k in 0..100u64 {
            ring.push(&[k as f64], 1, None, 1).unwrap();
        }
        assert!(ring.gaps.len() <= 4, "{} spans kept", ring.gaps.len());
        // Indices alternate gap, data; the ring keeps 196..200 = gap, 98.0, gap, 99.0.
        let (info, out) = read_all(&ring, &mut cur);
        assert_eq!(
            (info.lost_overrun, info.lost_gap, info.len),
            (98, 98 + 1, 1)
        );
        assert_eq!(out, [98.0]);
        let (rest, out) = read_all(&ring, &mut cur);
        assert_eq!((rest.start_index, rest.lost_gap, rest.len), (199, 1, 1));
        assert_eq!(out, [99.0]);
        assert_eq!(ring.available(&cur), 0);
        assert_eq!(
            cur.total_read + cur.total_lost_gap + cur.total_lost_overrun,
            200
        );
    }

    #[test]
    fn t0_anchors_then_drives_gaps() {
        let mut ring = SampleRing::<f64>::new(1, 64, 10.0).unwrap();
        let mut cur = ring.cursor_at_end();
        let t = 1.7e9;
        ring.push(&ramp(0, 5), 5, Some(t), 0).unwrap();
        assert_eq!(ring.time_of(0), t);
        // On time: no gap. Slightly late (0.4 period): re-anchor, no gap.
        let on_time = ring.push(&ramp(5, 5), 5, Some(t + 0.5), 0).unwrap();
        assert_eq!(
            on_time,
            PushInfo {
                start_index: 5,
                gap: 0
            }
        );
        let late = ring.push(&ramp(10, 5), 5, Some(t + 1.04), 0).unwrap();
        assert_eq!(late.gap, 0);
        assert!((ring.time_of(10) - (t + 1.04)).abs() < 1e-6);
        // A jump of 2.6 periods beyond the expected time: a gap of 3.
        let expected = ring.time_of(15);
        let jumped = ring
            .push(&ramp(18, 2), 2, Some(expected + 0.26), 0)
            .unwrap();
        assert_eq!(
            jumped,
            PushInfo {
                start_index: 18,
                gap: 3
            }
        );
        assert!((ring.time_of(18) - (expected + 0.26)).abs() < 1e-6);
        // Backwards by more than half a period: error, ring unchanged.
        let before = ring.written();
        let err = ring
            .push(&ramp(0, 1), 1, Some(ring.time_of(20) - 0.06), 0)
            .unwrap_err();
        assert!(matches!(err, RingError::TimeWentBackwards { .. }));
        assert_eq!(ring.written(), before);
        let (a, _) = read_all(&ring, &mut cur);
        let (b, _) = read_all(&ring, &mut cur);
        assert_eq!((a.len, b.start_index, b.lost_gap, b.len), (15, 18, 3, 2));
    }

    #[test]
    fn gap_with_t0_means_time_after_the_gap() {
        let mut ring = SampleRing::<f32>::new(1, 8, 100.0).unwrap();
        ring.push(&[1.0], 1, Some(10.0), 0).unwrap();
        let info = ring.push(&[2.0], 1, Some(10.05), 4).unwrap();
        assert_eq!(
            info,
            PushInfo {
                start_index: 5,
                gap: 4
            }
        );
        assert!(matches!(
            ring.push(&[3.0], 1, Some(10.06), 4),
            Err(RingError::TimeWentBackwards { .. })
        ));
    }

    #[test]
    fn rejects_bad_blocks_and_times() {
        let mut ring = SampleRing::<f32>::new(2, 8, 1.0).unwrap();
        assert!(matches!(
            ring.push(&[1.0; 3], 2, None, 0),
            Err(RingError::BlockSize { got: 3, .. })
        ));
        assert!(matches!(
            ring.push(&[1.0; 2], 1, Some(f64::NAN), 0),
            Err(RingError::BadTime(_))
        ));
        ring.push(&[0.0; 2], 1, None, 0).unwrap();
        assert!(matches!(
            ring.push(&[], 0, None, u64::MAX),
            Err(RingError::IndexOverflow { .. })
        ));
        assert_eq!(ring.written(), 1);
        assert_eq!(
            ring.latest_into(9, &mut Vec::new()),
            Err(RingError::LatestBeyondCapacity {
                requested: 9,
                capacity: 8
            })
        );
        assert_eq!(
            ring.latest_into(2, &mut Vec::new()),
            Err(RingError::LatestBeyondWritten {
                requested: 2,
                written: 1
            })
        );
    }

    #[test]
    fn huge_gap_clears_the_ring_and_reader_counts_it() {
        let mut ring = SampleRing::<f64>::new(2, 4, 1.0).unwrap();
        let mut cur = ring.cursor_at_end();
        ring.push(&[1.0, 2.0, 3.0, 4.0], 2, None, 0).unwrap();
        ring.push(&[], 0, None, 1_000_000).unwrap();
        let mut latest = Vec::new();
        ring.latest_into(4, &mut latest).unwrap();
        assert!(latest.iter().all(|v| v.is_nan()));
        let (info, out) = read_all(&ring, &mut cur);
        assert_eq!(
            (info.lost_overrun, info.lost_gap, info.len),
            (2, 1_000_000, 0)
        );
        assert!(out.is_empty());
        assert_eq!(cur.position(), 1_000_002);
    }

    #[test]
    fn reader_from_oldest_gets_what_is_kept() {
        let mut ring = SampleRing::<f64>::new(1, 4, 1.0).unwrap();
        ring.push(&ramp(0, 6), 6, None, 0).unwrap();
        let mut cur = ring.cursor_at_oldest();
        let (info, out) = read_all(&ring, &mut cur);
        assert_eq!((info.start_index, info.lost_overrun), (2, 0));
        assert_eq!(out, ramp(2, 4));
    }

    #[test]
    fn bookkeeping_stays_bounded_over_a_long_stream() {
        let mut ring = SampleRing::<f32>::new(1, 16, 100.0).unwrap();
        let mut cur = ring.cursor_at_end();
        let block = [0.0f32; 8];
        for k in 0..10_000u64 {
            // Every third push jumps 5 samples (a gap); the others drift by a tenth of a period.
            let late = if k % 3 == 0 { 0.05 } else { 0.001 };
            let t0 = ring.time_of(ring.written()) + late;
            ring.push(&block, 8, Some(t0), 0).unwrap();
            if k % 7 == 0 {
                ring.read_into(&mut cur, usize::MAX, &mut Vec::new())
                    .unwrap();
            }
        }
        assert!(
            ring.anchors.len() <= 4,
            "{} anchors kept",
            ring.anchors.len()
        );
        assert!(ring.gaps.len() <= 4, "{} gap spans kept", ring.gaps.len());
        ring.read_into(&mut cur, usize::MAX, &mut Vec::new())
            .unwrap();
        while ring.available(&cur) > 0 {
            ring.read_into(&mut cur, usize::MAX, &mut Vec::new())
                .unwrap();
        }
        assert_eq!(ring.total_gap(), 5 * 3333); // k = 0 anchors the time base: no gap
        let owed = cur.total_read + cur.total_lost_overrun + cur.total_lost_gap;
        assert_eq!(owed, ring.written());
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn a_copy_too_large_for_memory_is_an_error_and_leaves_the_cursor() {
        // Room for usize::MAX / 2 samples per channel cannot exist: the reservation fails
        // cleanly where an infallible one would abort the process.
        let mut ring = SampleRing::<f64>::new(3, 8, 1.0).unwrap();
        let mut cur = ring.cursor_at_oldest();
        ring.push(&[0.0; 24], 8, None, 0).unwrap();
        let mut out: Vec<f64> = Vec::new();
        assert_eq!(
            ring.reserve_copy(&mut out, usize::MAX / 2),
            Err(RingError::OutOfMemory {
                channels: 3,
                samples: usize::MAX / 2
            })
        );
        let info = ring.read_into(&mut cur, 5, &mut out).unwrap();
        assert_eq!((info.start_index, info.len, out.len()), (0, 5, 15));
        assert_eq!(cur.position(), 5);
    }
}
