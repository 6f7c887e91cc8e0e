//! Parity with River 0.26.1: the same streams give drifts (and warnings) at
//! the same sample indices.
//!
//! Source of every constant: `python3 scripts/river_reference.py` (River
//! 0.26.1, Python 3.11), which runs River's detectors on the streams of
//! `scripts/streams.py`, bit-identical to `monitor_strategies::synth`.

use monitor_core::detector::DriftStatus;
use monitor_strategies::detectors::{
    AdwinConfig, DdmConfig, Direction, EddmConfig, HddmAConfig, HddmWConfig, KswinConfig, PageHinkleyConfig,
};
use monitor_strategies::synth::{Segment, bernoulli_stream, gaussian_stream};
use monitor_strategies::{Adwin, Ddm, Eddm, HddmA, HddmW, Kswin, PageHinkley};

/// `GAUSS_SHIFTS` in the script: seed 11.
fn gauss_shifts() -> Vec<f64> {
    gaussian_stream(
        11,
        &[
            Segment::new(2000, 0.0, 1.0),
            Segment::new(2000, 1.0, 1.0),
            Segment::new(2000, -0.5, 1.0),
            Segment::new(2000, 2.0, 1.0),
            Segment::new(2000, 2.0, 3.0),
        ],
    )
}

/// `GAUSS_SMALL`: seed 12.
fn gauss_small() -> Vec<f64> {
    gaussian_stream(12, &[Segment::new(3000, 0.0, 1.0), Segment::new(3000, 0.3, 1.0), Segment::new(3000, 0.0, 1.0)])
}

/// `ERRORS`: seed 21.
fn errors() -> Vec<f64> {
    bernoulli_stream(
        21,
        &[
            Segment::bernoulli(2000, 0.1),
            Segment::bernoulli(2000, 0.3),
            Segment::bernoulli(2000, 0.05),
            Segment::bernoulli(2000, 0.5),
            Segment::bernoulli(2000, 0.2),
        ],
    )
}

/// `ERRORS_SLOW`: seed 22.
fn errors_slow() -> Vec<f64> {
    bernoulli_stream(
        22,
        &[Segment::bernoulli(3000, 0.2), Segment::bernoulli(3000, 0.25), Segment::bernoulli(3000, 0.4)],
    )
}

/// Drift indices and warning runs (inclusive) of a detector over a stream.
fn run(mut update: impl FnMut(f64) -> DriftStatus, xs: &[f64]) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut drifts = Vec::new();
    let mut warnings: Vec<(usize, usize)> = Vec::new();
    for (i, &x) in xs.iter().enumerate() {
        match update(x) {
            DriftStatus::Drift => drifts.push(i),
            DriftStatus::Warning => match warnings.last_mut() {
                Some((_, end)) if *end + 1 == i => *end = i,
                _ => warnings.push((i, i)),
            },
            DriftStatus::Stable => {}
        }
    }
    (drifts, warnings)
}

// ADWIN_SHIFTS: River 0.26.1 ADWIN(delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10), stream seed 11
const ADWIN_SHIFTS_DRIFTS: &[usize] = &[2047, 4031, 6015, 8415];

// ADWIN_SMALL: River 0.26.1 ADWIN(delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10), stream seed 12
const ADWIN_SMALL_DRIFTS: &[usize] = &[3199, 6431];

// ADWIN_CLOCK1: River 0.26.1 ADWIN(delta=0.01, clock=1, max_buckets=5, min_window_length=5, grace_period=10), stream seed 12
const ADWIN_CLOCK1_DRIFTS: &[usize] = &[3156, 6404];

// ADWIN_ERRORS: River 0.26.1 ADWIN(delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10), stream seed 21
const ADWIN_ERRORS_DRIFTS: &[usize] = &[2079, 4127, 6047, 8159];

// PH_SHIFTS: River 0.26.1 PageHinkley(min_instances=30, delta=0.005, threshold=50.0, alpha=0.9999, mode='both'), stream seed 11
const PH_SHIFTS_DRIFTS: &[usize] =
    &[2010, 2770, 4010, 5155, 6018, 7021, 8147, 8330, 8467, 8821, 9000, 9149, 9317, 9444, 9592, 9670, 9766, 9844];

// PH_UP: River 0.26.1 PageHinkley(min_instances=30, delta=0.005, threshold=30.0, alpha=0.9999, mode='up'), stream seed 12
const PH_UP_DRIFTS: &[usize] = &[2490, 3088, 3888, 4260, 5166, 5421, 7963, 8264];

// PH_DOWN: River 0.26.1 PageHinkley(min_instances=30, delta=0.005, threshold=30.0, alpha=0.999, mode='down'), stream seed 12
const PH_DOWN_DRIFTS: &[usize] = &[1092, 1623, 4707, 5652, 6205, 7648, 8088, 8678];

// DDM_ERRORS: River 0.26.1 DDM(warm_start=30, warning_threshold=2.0, drift_threshold=3.0), stream seed 21
const DDM_ERRORS_DRIFTS: &[usize] = &[2328, 6176];
const DDM_ERRORS_WARNINGS: &[(usize, usize)] = &[
    (612, 612),
    (643, 651),
    (657, 659),
    (666, 666),
    (681, 697),
    (701, 713),
    (2080, 2082),
    (2085, 2105),
    (2111, 2112),
    (2127, 2327),
    (3486, 3535),
    (6086, 6175),
    (6234, 6239),
    (6241, 6243),
    (6248, 6248),
    (6251, 6251),
    (6659, 6671),
    (6675, 6675),
    (6677, 6677),
    (6682, 6686),
    (6811, 6811),
    (6813, 6813),
    (6817, 6817),
    (6852, 6862),
    (6938, 6940),
    (6942, 6973),
    (6983, 7001),
    (7003, 7007),
    (7009, 7019),
    (7021, 7021),
    (7025, 7025),
];

// DDM_SLOW: River 0.26.1 DDM(warm_start=30, warning_threshold=2.0, drift_threshold=3.0), stream seed 22
const DDM_SLOW_DRIFTS: &[usize] = &[];
const DDM_SLOW_WARNINGS: &[(usize, usize)] = &[(44, 44), (47, 48), (487, 487), (491, 491), (6700, 8999)];

// EDDM_ERRORS: River 0.26.1 EDDM(warm_start=30, alpha=0.95, beta=0.9), stream seed 21
const EDDM_ERRORS_DRIFTS: &[usize] = &[
    519, 794, 1036, 1258, 1809, 2025, 2147, 2256, 2357, 2590, 2717, 2880, 3087, 3216, 3366, 3453, 3644, 3841, 3983,
    4578, 5028, 5698, 6016, 6089, 6169, 6232, 6335, 6419, 6601, 6661, 6734, 6791, 6860, 6928, 6991, 7077, 7144, 7276,
    7333, 7421, 7487, 7546,
];
const EDDM_ERRORS_WARNINGS: &[(usize, usize)] = &[
    (231, 248),
    (460, 518),
    (1558, 1633),
    (1670, 1734),
    (1749, 1808),
    (2140, 2146),
    (2544, 2553),
    (2573, 2589),
    (2848, 2879),
    (2987, 3005),
    (3018, 3048),
    (3051, 3086),
    (3351, 3365),
    (3614, 3643),
    (3823, 3840),
    (3956, 3982),
    (4542, 4577),
    (6227, 6231),
    (6299, 6312),
    (6323, 6334),
    (6416, 6418),
    (6559, 6579),
    (6585, 6600),
    (6852, 6859),
    (6986, 6990),
    (7070, 7076),
    (7242, 7248),
    (7257, 7275),
    (7396, 7420),
    (7608, 7616),
    (7635, 7639),
    (7691, 7700),
    (7705, 7710),
    (7779, 7789),
    (7917, 7975),
];

// EDDM_SLOW: River 0.26.1 EDDM(warm_start=30, alpha=0.95, beta=0.9), stream seed 22
const EDDM_SLOW_DRIFTS: &[usize] = &[
    166, 331, 446, 968, 1289, 4526, 4746, 4878, 4961, 5076, 5220, 5382, 5564, 5690, 5781, 5921, 6025, 6325, 6390, 6480,
    6547,
];
const EDDM_SLOW_WARNINGS: &[(usize, usize)] = &[
    (154, 165),
    (779, 788),
    (817, 835),
    (936, 967),
    (1118, 1127),
    (1250, 1288),
    (1409, 1429),
    (1440, 1450),
    (1467, 1537),
    (1564, 1600),
    (3370, 4525),
    (4698, 4745),
    (4868, 4877),
    (5337, 5352),
    (5366, 5381),
    (5477, 5489),
    (5552, 5563),
    (6285, 6324),
    (6620, 6646),
    (6650, 6681),
    (6697, 6770),
    (6856, 6878),
    (6887, 6916),
    (6922, 6956),
];

// HDDMA_ERRORS: River 0.26.1 HDDMA(drift_confidence=0.001, warning_confidence=0.005, two_sided_test=False), stream seed 21
const HDDMA_ERRORS_DRIFTS: &[usize] = &[2045, 6054];
const HDDMA_ERRORS_WARNINGS: &[(usize, usize)] =
    &[(2027, 2028), (2031, 2032), (2034, 2036), (2042, 2044), (6052, 6053)];

// HDDMA_TWO: River 0.26.1 HDDMA(drift_confidence=0.001, warning_confidence=0.005, two_sided_test=True), stream seed 21
const HDDMA_TWO_DRIFTS: &[usize] = &[2045, 4066, 6075, 8093];
const HDDMA_TWO_WARNINGS: &[(usize, usize)] = &[
    (2027, 2028),
    (2031, 2032),
    (2034, 2036),
    (2042, 2044),
    (4043, 4065),
    (6061, 6074),
    (8071, 8071),
    (8081, 8092),
    (9732, 9732),
];

// HDDMW_ERRORS: River 0.26.1 HDDMW(drift_confidence=0.001, warning_confidence=0.005, lambda_val=0.05, two_sided_test=False), stream seed 21
const HDDMW_ERRORS_DRIFTS: &[usize] = &[2244, 6052, 6601, 7903];
const HDDMW_ERRORS_WARNINGS: &[(usize, usize)] = &[
    (2017, 2017),
    (2061, 2066),
    (2069, 2069),
    (2071, 2071),
    (2080, 2080),
    (2243, 2243),
    (3370, 3370),
    (3374, 3374),
    (3376, 3378),
    (3490, 3492),
    (3496, 3496),
    (3498, 3498),
    (6033, 6034),
    (6036, 6036),
    (6041, 6042),
    (6048, 6048),
    (6050, 6051),
    (6237, 6237),
    (6592, 6593),
    (6595, 6595),
    (6598, 6600),
    (7292, 7292),
    (7339, 7340),
    (7897, 7902),
    (8681, 8686),
    (9724, 9724),
    (9726, 9726),
    (9729, 9729),
    (9731, 9733),
];

// HDDMW_TWO: River 0.26.1 HDDMW(drift_confidence=0.001, warning_confidence=0.005, lambda_val=0.05, two_sided_test=True), stream seed 21
const HDDMW_TWO_DRIFTS: &[usize] = &[2244, 4028, 6052, 6601, 7903, 8065];
const HDDMW_TWO_WARNINGS: &[(usize, usize)] = &[
    (2017, 2017),
    (2061, 2066),
    (2069, 2069),
    (2071, 2071),
    (2080, 2080),
    (2243, 2243),
    (3370, 3370),
    (3374, 3374),
    (3376, 3378),
    (3490, 3492),
    (3496, 3496),
    (3498, 3498),
    (3576, 3576),
    (3582, 3585),
    (4019, 4027),
    (6033, 6034),
    (6036, 6036),
    (6041, 6042),
    (6048, 6048),
    (6050, 6051),
    (6237, 6237),
    (6309, 6310),
    (6312, 6312),
    (6315, 6315),
    (6411, 6411),
    (6512, 6512),
    (6515, 6515),
    (6538, 6540),
    (6545, 6545),
    (6592, 6593),
    (6595, 6595),
    (6598, 6600),
    (7060, 7060),
    (7063, 7063),
    (7292, 7292),
    (7339, 7340),
    (7386, 7387),
    (7389, 7389),
    (7897, 7902),
    (8059, 8064),
    (8681, 8686),
    (8861, 8862),
    (9441, 9454),
    (9479, 9479),
    (9489, 9493),
    (9517, 9519),
    (9553, 9557),
    (9724, 9724),
    (9726, 9726),
    (9729, 9729),
    (9731, 9733),
];

// KSWIN_SHIFTS: River 0.26.1 KSWIN(alpha=0.005, window_size=100, stat_size=30, seed=42), stream seed 11
const KSWIN_SHIFTS_DRIFTS: &[usize] = &[
    602, 2017, 2564, 2796, 3731, 3904, 4018, 4325, 4817, 5615, 5873, 6012, 6677, 6808, 7117, 7646, 8910, 9126, 9774,
    9911,
];

// KSWIN_SMALL: River 0.26.1 KSWIN(alpha=0.01, window_size=200, stat_size=50, seed=7), stream seed 12
const KSWIN_SMALL_DRIFTS: &[usize] =
    &[429, 774, 1005, 1726, 2588, 3114, 3641, 3983, 4246, 4586, 4848, 5919, 6251, 6526, 6771, 7751, 8027, 8508, 8814];

#[test]
fn adwin_matches_river() {
    let mut d = Adwin::default();
    assert_eq!(run(|x| d.update(x), &gauss_shifts()).0, ADWIN_SHIFTS_DRIFTS);
    let mut d = Adwin::default();
    assert_eq!(run(|x| d.update(x), &gauss_small()).0, ADWIN_SMALL_DRIFTS);
    let mut d = Adwin::new(AdwinConfig { delta: 0.01, clock: 1, ..AdwinConfig::default() });
    assert_eq!(run(|x| d.update(x), &gauss_small()).0, ADWIN_CLOCK1_DRIFTS);
    let mut d = Adwin::default();
    assert_eq!(run(|x| d.update(x), &errors()).0, ADWIN_ERRORS_DRIFTS);
}

#[test]
fn page_hinkley_matches_river() {
    let mut d = PageHinkley::default();
    assert_eq!(run(|x| d.update(x), &gauss_shifts()).0, PH_SHIFTS_DRIFTS);
    let mut d =
        PageHinkley::new(PageHinkleyConfig { mode: Direction::Up, threshold: 30.0, ..PageHinkleyConfig::default() });
    assert_eq!(run(|x| d.update(x), &gauss_small()).0, PH_UP_DRIFTS);
    let mut d = PageHinkley::new(PageHinkleyConfig {
        mode: Direction::Down,
        threshold: 30.0,
        alpha: 0.999,
        ..PageHinkleyConfig::default()
    });
    assert_eq!(run(|x| d.update(x), &gauss_small()).0, PH_DOWN_DRIFTS);
}

#[test]
fn ddm_matches_river() {
    let mut d = Ddm::new(DdmConfig::default());
    assert_eq!(run(|x| d.update(x), &errors()), (DDM_ERRORS_DRIFTS.to_vec(), DDM_ERRORS_WARNINGS.to_vec()));
    let mut d = Ddm::default();
    assert_eq!(run(|x| d.update(x), &errors_slow()), (DDM_SLOW_DRIFTS.to_vec(), DDM_SLOW_WARNINGS.to_vec()));
}

#[test]
fn eddm_matches_river() {
    let mut d = Eddm::new(EddmConfig::default());
    assert_eq!(run(|x| d.update(x), &errors()), (EDDM_ERRORS_DRIFTS.to_vec(), EDDM_ERRORS_WARNINGS.to_vec()));
    let mut d = Eddm::default();
    assert_eq!(run(|x| d.update(x), &errors_slow()), (EDDM_SLOW_DRIFTS.to_vec(), EDDM_SLOW_WARNINGS.to_vec()));
}

#[test]
fn hddm_a_matches_river() {
    let mut d = HddmA::default();
    assert_eq!(run(|x| d.update(x), &errors()), (HDDMA_ERRORS_DRIFTS.to_vec(), HDDMA_ERRORS_WARNINGS.to_vec()));
    let mut d = HddmA::new(HddmAConfig { two_sided_test: true, ..HddmAConfig::default() });
    assert_eq!(run(|x| d.update(x), &errors()), (HDDMA_TWO_DRIFTS.to_vec(), HDDMA_TWO_WARNINGS.to_vec()));
}

#[test]
fn hddm_w_matches_river() {
    let mut d = HddmW::default();
    assert_eq!(run(|x| d.update(x), &errors()), (HDDMW_ERRORS_DRIFTS.to_vec(), HDDMW_ERRORS_WARNINGS.to_vec()));
    let mut d = HddmW::new(HddmWConfig { two_sided_test: true, ..HddmWConfig::default() });
    assert_eq!(run(|x| d.update(x), &errors()), (HDDMW_TWO_DRIFTS.to_vec(), HDDMW_TWO_WARNINGS.to_vec()));
}

/// KSWIN draws its comparison sample at random; with CPython's Mersenne
/// Twister and the same seed, the draws and so the decisions are River's.
#[test]
fn kswin_matches_river_with_the_same_seed() {
    let mut d = Kswin::default();
    assert_eq!(run(|x| d.update(x), &gauss_shifts()).0, KSWIN_SHIFTS_DRIFTS);
    let mut d = Kswin::new(KswinConfig { seed: 7, alpha: 0.01, window: 200.into(), stat: 50, ..Default::default() });
    assert_eq!(run(|x| d.update(x), &gauss_small()).0, KSWIN_SMALL_DRIFTS);
}
