use super::*;

fn grid(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

#[test]
fn a_piecewise_linear_valley_gives_its_slope_ratio() {
    // L = p t for t >= 0 and -c p t for t < 0, with p = 0.1 and c = 4: flat on the + side.
    let ts = grid(-10.0, 10.0, 41);
    let ls: Vec<f64> = ts
        .iter()
        .map(|&t| if t >= 0.0 { 0.1 * t } else { -0.4 * t })
        .collect();
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 1e-3)).unwrap();
    assert!((s.c - 4.0).abs() < 1e-12, "{}", s.c);
    assert_eq!(s.flat_side, Side::Plus);
    assert!(s.asymmetric);
    assert!((s.rise_plus - 1.0).abs() < 1e-12 && (s.rise_minus - 4.0).abs() < 1e-12);
    assert!((s.slope_plus - 0.1).abs() < 1e-12 && (s.slope_minus - 0.4).abs() < 1e-12);
    assert_eq!((s.half_range, s.r), (10.0, 5.0));
    // The kink sits at 0; the parabola through a kink is off by less than half a step.
    assert!(s.bias.abs() <= 0.25, "{}", s.bias);
}

#[test]
fn a_symmetric_quadratic_is_not_asymmetric() {
    let ts = grid(-4.0, 4.0, 17);
    let ls: Vec<f64> = ts.iter().map(|t| 0.3 + t * t).collect();
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 1e-3)).unwrap();
    assert!((s.c - 1.0).abs() < 1e-12);
    assert_eq!(s.flat_side, Side::Neither);
    assert!(!s.asymmetric);
    assert!((s.centre_loss - 0.3).abs() < 1e-12);
}

#[test]
fn the_bias_finds_an_off_centre_minimum_between_grid_points() {
    // (t - 0.3)^2 sampled every 0.5: the parabola fit recovers 0.3 exactly.
    let ts = grid(-5.0, 5.0, 21);
    let ls: Vec<f64> = ts.iter().map(|t| (t - 0.3) * (t - 0.3)).collect();
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 1e-3)).unwrap();
    assert!((s.bias - 0.3).abs() < 1e-9, "{}", s.bias);
    // Shifting the minimum right makes the left side steeper beyond r: flat side +.
    assert_eq!(s.flat_side, Side::Plus);
}

#[test]
fn a_side_that_does_not_rise_makes_c_infinite() {
    let ts = grid(-2.0, 2.0, 9);
    let ls: Vec<f64> = ts
        .iter()
        .map(|&t| if t > 0.0 { 1.0 } else { 1.0 - t })
        .collect();
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 1e-3)).unwrap();
    assert!(s.c.is_infinite() && s.asymmetric);
    assert_eq!(s.flat_side, Side::Plus);
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"c\":null"), "{json}");
    let back: Score = serde_json::from_str(&json).unwrap();
    assert!(back.c.is_infinite());
}

#[test]
fn rises_within_noise_are_flat_not_asymmetric() {
    // A sign probe over range 2 whose rises are -0.001 and 0.008: c is large, but with a
    // standard error of 0.011 per point the floor is 2·sqrt(2)·0.011 ≈ 0.031.
    let ts = grid(-2.0, 2.0, 9);
    let ls: Vec<f64> = ts
        .iter()
        .map(|&t| 0.2229 + if t > 0.0 { 0.004 * t } else { 0.0005 * t })
        .collect();
    let ses = vec![0.011; ts.len()];
    let s = score(&ts, &ls, &ses, Scoring::new(3.0, 1e-3)).unwrap();
    assert!(s.c.is_infinite(), "{}", s.c);
    assert!((s.rise_minus + 0.001).abs() < 1e-12 && (s.rise_plus - 0.008).abs() < 1e-12);
    assert!((s.noise_floor - 2.0 * (2.0f64).sqrt() * 0.011).abs() < 1e-12);
    assert_eq!((s.class, s.asymmetric), (Class::Flat, false));
    assert_eq!(s.flat_side, Side::Neither);
    // With only a stated minimum of 0.001 the same curve would count (0.008 >= 3 · 0.001):
    // the standard error is what tells it is noise.
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 1e-3)).unwrap();
    assert_eq!(s.noise_floor, 1e-3);
    assert_eq!(s.class, Class::Asymmetric);
}

#[test]
fn one_side_within_noise_counts_only_when_the_other_rises_far_above_it() {
    // + rises 0.01 (within a floor of 0.05), - rises 0.5 = 10 floors: asymmetric.
    let ts = grid(-4.0, 4.0, 9);
    let ls: Vec<f64> = ts
        .iter()
        .map(|&t| if t > 0.0 { 0.0025 * t } else { -0.125 * t })
        .collect();
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 0.05)).unwrap();
    assert_eq!((s.class, s.flat_side), (Class::Asymmetric, Side::Plus));
    // - rises 0.1 = 2 floors: not enough to say c >= 3.
    let ls: Vec<f64> = ts
        .iter()
        .map(|&t| if t > 0.0 { 0.0025 * t } else { -0.025 * t })
        .collect();
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 0.05)).unwrap();
    assert_eq!((s.class, s.asymmetric), (Class::Undecided, false));
    // Both sides well above the floor and alike: symmetric.
    let ls: Vec<f64> = ts.iter().map(|t| 0.1 * t * t).collect();
    let s = score(&ts, &ls, &[], Scoring::new(3.0, 0.05)).unwrap();
    assert_eq!(s.class, Class::Symmetric);
}

#[test]
fn each_side_is_judged_against_its_own_noise() {
    // Precise losses at 0 and -2 (SE 0.001), a noisy one at +2 (SE 0.05): the floors are
    // 2·sqrt(0.001² + 0.001²) ≈ 0.0028 at -T and 2·sqrt(0.001² + 0.05²) ≈ 0.1000 at +T.
    let ts = [-2.0, -1.0, 0.0, 1.0, 2.0];
    let ls = [1.05, 1.01, 1.0, 1.05, 1.25];
    let ses = [0.001, 0.001, 0.001, 0.03, 0.05];
    let s = score(&ts, &ls, &ses, Scoring::new(3.0, 1e-3)).unwrap();
    let floor = |a: f64, b: f64| 2.0 * (a * a + b * b).sqrt();
    assert!((s.noise_floor_minus - floor(0.001, 0.001)).abs() < 1e-12);
    assert!((s.noise_floor_plus - floor(0.001, 0.05)).abs() < 1e-12);
    assert_eq!(s.noise_floor, s.noise_floor_plus);
    // Slopes beyond r = 1: 0.04 on the - side, 0.2 on the + side: c = 5. The - side's rise
    // of 0.05 is far above its own floor; one floor for both sides (the larger, 0.1) would
    // have called it noise and left the curve undecided (0.25 < 3 · 0.1).
    assert!((s.c - 5.0).abs() < 1e-9, "{}", s.c);
    assert_eq!((s.class, s.flat_side), (Class::Asymmetric, Side::Minus));
    assert_eq!(s.describe_noise_floors(), "-T 0.003, +T 0.100");
}

#[test]
fn one_sided_grids_and_bad_curves_are_not_scored() {
    let ts = grid(0.0, 1.0, 5);
    assert!(score(&ts, &[1.0; 5], &[], Scoring::new(3.0, 1e-3)).is_none());
    let ts = grid(-1.0, 1.0, 5);
    assert!(
        score(
            &ts,
            &[1.0, 1.0, f64::NAN, 1.0, 1.0],
            &[],
            Scoring::new(3.0, 1e-3)
        )
        .is_none()
    );
}

#[test]
fn interpolation_is_linear_between_samples_and_clamped_outside() {
    let ts = [0.0, 1.0, 3.0];
    let ys = [0.0, 2.0, 6.0];
    assert_eq!(interpolate(&ts, &ys, 0.5), 1.0);
    assert_eq!(interpolate(&ts, &ys, 2.0), 4.0);
    assert_eq!(interpolate(&ts, &ys, -1.0), 0.0);
    assert_eq!(interpolate(&ts, &ys, 9.0), 6.0);
}
