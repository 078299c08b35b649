//! Reading what a run directory holds, for the tests that compare runs.

/// `(train loss, train accuracy, test loss, test accuracy, lr)` of every epoch in a run's
/// `metrics.json`.
pub fn metrics(run: &std::path::Path) -> Vec<[f64; 5]> {
    let text = std::fs::read_to_string(run.join("metrics.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            [
                "train_loss",
                "train_accuracy",
                "test_loss",
                "test_accuracy",
                "lr",
            ]
            .map(|k| m[k].as_f64().unwrap())
        })
        .collect()
}
