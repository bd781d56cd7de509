#[test]
fn a_last_batch_of_one_sample_is_dropped_only_under_batch_norm_over_samples() {
    assert_eq!(super::batches_per_epoch(257, 64, true), 4);
    assert_eq!(super::batches_per_epoch(257, 64, false), 5);
    assert_eq!(super::batches_per_epoch(258, 64, true), 5);
    assert_eq!(super::batches_per_epoch(256, 64, true), 4);
    assert_eq!(super::batches_per_epoch(5, 1, false), 5);
}
