//! Config JSON → parse (unknown fields refused, field paths) → validate → model checks →
//! Keras-like summary, for both `TrainConfig` (a run's `config.json`) and a bare `CnnConfig`.
//! Never a panic (overflow checks are on): every input ends in `Ok` or an error that renders.
//!
//! Inputs starting with `#` are read as sizes instead of JSON: a CNN whose input, kernels,
//! strides, paddings, filters and dense widths each take any magnitude from 0 to `usize::MAX`
//! (mutated JSON rarely holds numbers like 10^12).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netcalc::app::train::{TrainConfig, check_model_fits_data};
use netcalc::error::parse_json;
use netcalc::model::{CnnConfig, FeatureExtractorConfig};
use netcalc::{ClassifierConfig, Conv2dBlockConfig, Pool2dConfig, PoolKind};

fn check_model(model: &CnnConfig) {
    match model.validate() {
        Ok(()) => {
            let summary = model.summary().expect("a validated model has a summary");
            let text = summary.to_string();
            assert!(text.contains(&netcalc::model::summary::thousands(summary.total_params())));
            let info = netcalc::app::data::DataInfo::mnist();
            let _ = check_model_fits_data(model, &info).map_err(|e| e.to_string());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Sizes from bytes: a magnitude class byte, then up to 8 bytes of value.
struct Sizes<'a>(&'a [u8]);

impl Sizes<'_> {
    fn next(&mut self) -> usize {
        let [class, rest @ ..] = self.0 else {
            return 1;
        };
        let bits = [3, 5, 8, 16, 24, 32, 48, 64][*class as usize % 8];
        let n = (bits / 8usize).max(1).min(rest.len());
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&rest[..n]);
        self.0 = &rest[n..];
        let v = u64::from_le_bytes(v);
        let v = if bits == 64 {
            v
        } else {
            v & ((1u64 << bits) - 1)
        };
        usize::try_from(v).unwrap_or(usize::MAX)
    }
}

fn structured(data: &[u8]) -> CnnConfig {
    let mut s = Sizes(data);
    let input = [s.next(), s.next(), s.next()];
    let blocks = (0..s.next() % 4)
        .map(|_| {
            // `in_channels` left to the extractor: the previous block's filters
            let mut b = Conv2dBlockConfig::new(1, s.next(), s.next())
                .with_stride(s.next())
                .with_padding(s.next());
            b.in_channels = None;
            if s.next() % 2 == 1 {
                let kind = if s.next() % 2 == 0 {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                };
                b = b.with_pool(
                    Pool2dConfig::new(kind, [s.next(), s.next()])
                        .with_stride([s.next(), s.next()])
                        .with_padding([s.next(), s.next()]),
                );
            }
            b
        })
        .collect();
    let n_inputs = s.next();
    let neurons: Vec<usize> = (0..s.next() % 5).map(|_| s.next()).collect();
    CnnConfig::new(
        "fuzz",
        FeatureExtractorConfig::new(input).with_blocks(blocks),
        ClassifierConfig::new(n_inputs, neurons),
    )
}

fuzz_target!(|data: &[u8]| {
    if let [b'#', rest @ ..] = data {
        let model = structured(rest);
        check_model(&model);
        // and as JSON, through the parser
        let text = serde_json::to_string(&model).expect("serializes");
        let back = parse_json::<CnnConfig>(Path::new("model.json"), &text).expect("round-trips");
        assert_eq!(back, model);
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_json::<TrainConfig>(Path::new("config.json"), text) {
        Ok(cfg) => {
            if cfg.validate().is_ok() {
                check_model(&cfg.model);
            }
        }
        Err(e) => assert!(e.to_string().contains("config.json")),
    }
    match parse_json::<CnnConfig>(Path::new("model.json"), text) {
        Ok(model) => check_model(&model),
        Err(e) => assert!(e.to_string().contains("model.json")),
    }
});
