//! A simulated patient's history in one arm: the sequence of states with entry and exit
//! times. This is all a contract sees (never the sampler).

/// One sojourn: `state` from `start` to `end` (years since treatment).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// State index within the arm.
    pub state: usize,
    /// Entry time.
    pub start: f64,
    /// Exit time (the horizon for the last segment).
    pub end: f64,
}

/// How a patient's follow-up ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Alive at the horizon.
    AliveAtHorizon,
    /// Died of background (general-population) mortality, or reached the maximum age.
    BackgroundDeath,
    /// Entered the death state through a modelled transition.
    DiseaseDeath,
}

/// A patient's path through the states of one arm, up to the horizon. The segments are
/// contiguous and cover [0, horizon]; a dead patient's last segment is the death state.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// Sojourns in time order.
    pub segments: Vec<Segment>,
    /// Time of death (infinite if alive at the horizon).
    pub death_time: f64,
    /// How follow-up ended.
    pub ending: Ending,
    /// The horizon.
    pub horizon: f64,
}

impl History {
    /// An empty history, to be filled by the simulator (reused across patients).
    pub fn new() -> Self {
        Self {
            segments: Vec::with_capacity(16),
            death_time: f64::INFINITY,
            ending: Ending::AliveAtHorizon,
            horizon: 0.0,
        }
    }

    /// Whether the patient is alive at time `t` (alive at the instant of death is false).
    #[inline]
    pub fn alive_at(&self, t: f64) -> bool {
        t < self.death_time
    }

    /// The state occupied at time `t` (0 <= t <= horizon); at an event time, the new state.
    pub fn state_at(&self, t: f64) -> usize {
        let i = self.segments.partition_point(|s| s.start <= t);
        self.segments[i.saturating_sub(1)].state
    }

    /// Whether `state` was entered at or before time `t`.
    pub fn entered_by(&self, state: usize, t: f64) -> bool {
        self.segments
            .iter()
            .take_while(|s| s.start <= t)
            .any(|s| s.state == state)
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}
