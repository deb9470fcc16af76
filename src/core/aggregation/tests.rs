//! Core tests: every strategy against a straightforward reference written here.

use super::*;
use crate::core::compression::{ClientState, CompressionConfig, CompressionType};
use crate::core::error::Code;
use crate::core::rng::Rng;

fn randn(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.normal() as f32).collect()
}

fn agg(strategy: Strategy) -> Aggregator {
    Aggregator::new(Config::new(strategy)).unwrap()
}

fn close(a: &[f32], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (*x as f64 - y).abs() <= tol * (1.0 + y.abs()),
            "index {i}: {x} vs {y}"
        );
    }
}

fn ref_wmean(gs: &[Vec<f32>], w: &[f64]) -> Vec<f64> {
    let t: f64 = w.iter().sum();
    (0..gs[0].len())
        .map(|j| gs.iter().zip(w).map(|(g, w)| g[j] as f64 * w).sum::<f64>() / t)
        .collect()
}

fn ref_sorted_col(gs: &[Vec<f32>], j: usize) -> Vec<f64> {
    let mut c: Vec<f64> = gs.iter().map(|g| g[j] as f64).collect();
    c.sort_by(|a, b| a.partial_cmp(b).unwrap());
    c
}

fn sparse(g: &[f32], keep_every: usize) -> CompressedGradient {
    let indices: Vec<u32> = (0..g.len() as u32)
        .filter(|i| (*i as usize).is_multiple_of(keep_every))
        .collect();
    let values = indices.iter().map(|&i| g[i as usize]).collect();
    CompressedGradient {
        length: g.len(),
        indices,
        values,
        dense: false,
        compression_type: CompressionType::TopK,
        encoding: crate::core::compression::ValueEncoding::F32,
        quantized: None,
        round: 0,
    }
}

use crate::core::compression::CompressedGradient;

#[test]
fn fedavg_matches_reference_on_random_inputs_dense_and_sparse() {
    let mut r = Rng::new(7);
    for trial in 0..20 {
        let n = 1 + r.below(70_000) as usize;
        let m = 1 + r.below(6) as usize;
        let gs: Vec<Vec<f32>> = (0..m).map(|i| randn(n, trial * 100 + i as u64)).collect();
        let w: Vec<f64> = (0..m).map(|_| r.uniform() + 0.01).collect();
        let sp: Vec<CompressedGradient> = gs.iter().map(|g| sparse(g, 3)).collect();
        // Mixed: even inputs dense, odd inputs sparse; the reference sees the sparse ones densified.
        let ups: Vec<Update> = (0..m)
            .map(|i| {
                if i % 2 == 0 {
                    Update::Dense(&gs[i])
                } else {
                    Update::Compressed(&sp[i])
                }
            })
            .collect();
        let dens: Vec<Vec<f32>> = (0..m)
            .map(|i| {
                if i % 2 == 0 {
                    gs[i].clone()
                } else {
                    sp[i].to_dense()
                }
            })
            .collect();
        let out = agg(Strategy::FedAvg)
            .aggregate(&ups, Some(&w), None)
            .unwrap();
        close(&out, &ref_wmean(&dens, &w), 1e-5);
    }
}

#[test]
fn fedavg_of_identical_inputs_is_that_input() {
    let g = randn(1000, 1);
    let ups = vec![Update::Dense(&g); 5];
    let out = agg(Strategy::FedAvg)
        .aggregate(&ups, Some(&[1.0, 2.0, 3.0, 4.0, 5.0]), None)
        .unwrap();
    close(&out, &g.iter().map(|&x| x as f64).collect::<Vec<_>>(), 1e-6);
}

#[test]
fn median_and_trimmed_mean_match_reference_and_ignore_outliers() {
    for (m, seed) in [(5usize, 1u64), (6, 2), (16, 3), (31, 4), (67, 5)] {
        let n = 5000;
        let mut gs: Vec<Vec<f32>> = (0..m).map(|i| randn(n, seed * 50 + i as u64)).collect();
        let ups: Vec<Update> = gs.iter().map(|g| Update::Dense(g)).collect();
        let med = agg(Strategy::Median).aggregate(&ups, None, None).unwrap();
        let tm = agg(Strategy::TrimmedMean)
            .aggregate(&ups, None, None)
            .unwrap();
        let k = ((0.1 * m as f64).floor() as usize).min((m - 1) / 2);
        let rmed: Vec<f64> = (0..n)
            .map(|j| {
                let c = ref_sorted_col(&gs, j);
                if m % 2 == 1 {
                    c[m / 2]
                } else {
                    (c[m / 2 - 1] + c[m / 2]) / 2.0
                }
            })
            .collect();
        let rtm: Vec<f64> = (0..n)
            .map(|j| {
                let c = ref_sorted_col(&gs, j);
                c[k..m - k].iter().sum::<f64>() / (m - 2 * k) as f64
            })
            .collect();
        close(&med, &rmed, 1e-6);
        close(&tm, &rtm, 1e-5);
        // A minority of huge outliers moves neither outside the honest range.
        let bad = (m - 1) / 2;
        let trim_bad = k; // trimmed mean tolerates k outliers per side
        for g in gs.iter_mut().take(bad) {
            g.iter_mut().for_each(|x| *x = 1e30);
        }
        let ups: Vec<Update> = gs.iter().map(|g| Update::Dense(g)).collect();
        let med = agg(Strategy::Median).aggregate(&ups, None, None).unwrap();
        assert!(
            med.iter().all(|x| x.abs() < 10.0),
            "median moved by outliers"
        );
        if trim_bad > 0 {
            let mut gs2: Vec<Vec<f32>> = (0..m).map(|i| randn(n, seed * 50 + i as u64)).collect();
            for g in gs2.iter_mut().take(trim_bad) {
                g.iter_mut().for_each(|x| *x = -1e30);
            }
            let ups: Vec<Update> = gs2.iter().map(|g| Update::Dense(g)).collect();
            let tm = agg(Strategy::TrimmedMean)
                .aggregate(&ups, None, None)
                .unwrap();
            assert!(
                tm.iter().all(|x| x.abs() < 10.0),
                "trimmed mean moved by outliers"
            );
        }
    }
}

#[test]
fn krum_never_selects_planted_outliers_within_the_bound() {
    let mut r = Rng::new(9);
    for trial in 0..30 {
        let f = 1 + r.below(3) as usize;
        let m = 2 * f + 3 + r.below(4) as usize;
        let n = 200;
        let mut gs: Vec<Vec<f32>> = (0..m)
            .map(|i| randn(n, 1000 + trial * 31 + i as u64))
            .collect();
        let bad: Vec<usize> = (0..f).map(|k| (k * 7 + trial as usize) % m).collect();
        for &b in &bad {
            let shift = 5.0 + 20.0 * r.uniform() as f32;
            gs[b].iter_mut().for_each(|x| *x += shift);
        }
        let ups: Vec<Update> = gs.iter().map(|g| Update::Dense(g)).collect();
        let mut cfg = Config::new(Strategy::Krum);
        cfg.faulty = f;
        let mut a = Aggregator::new(cfg.clone()).unwrap();
        let out = a.aggregate(&ups, None, None).unwrap();
        let sel = a.last.selected[0] as usize;
        assert!(!bad.contains(&sel), "Krum selected outlier {sel}");
        assert_eq!(out, gs[sel]);
        // Reference score.
        let d = |i: usize, j: usize| {
            gs[i]
                .iter()
                .zip(&gs[j])
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
        };
        let score = |i: usize| {
            let mut ds: Vec<f64> = (0..m).filter(|&j| j != i).map(|j| d(i, j)).collect();
            ds.sort_by(|a, b| a.partial_cmp(b).unwrap());
            ds[..m - f - 2].iter().sum::<f64>()
        };
        let best = (0..m)
            .min_by(|&a, &b| score(a).partial_cmp(&score(b)).unwrap().then(a.cmp(&b)))
            .unwrap();
        assert_eq!(sel, best);
        cfg.strategy = Strategy::MultiKrum;
        let mut mk = Aggregator::new(cfg).unwrap();
        mk.aggregate(&ups, None, None).unwrap();
        assert!(mk
            .last
            .selected
            .iter()
            .all(|s| !bad.contains(&(*s as usize))));
        assert_eq!(mk.last.selected.len(), m - f);
    }
}

#[test]
fn krum_refuses_too_few_inputs() {
    let g = randn(10, 1);
    let ups = vec![Update::Dense(&g); 4];
    let e = agg(Strategy::Krum).aggregate(&ups, None, None).unwrap_err();
    assert_eq!(e.code, Code::NoClients);
    assert!(e.message.contains("needs more than"), "{}", e.message);
}

#[test]
fn field_cases_zero_negative_nan_weights_mismatch_empty() {
    let a = [1.0f32, 2.0];
    let b = [3.0f32, 4.0];
    let ups = [Update::Dense(&a), Update::Dense(&b)];
    let mut x = agg(Strategy::FedAvg);
    assert_eq!(
        x.aggregate(&ups, Some(&[0.0, 0.0]), None).unwrap_err().code,
        Code::ZeroTotalWeight
    );
    for w in [[-1.0, 2.0], [f64::NAN, 1.0], [f64::INFINITY, 1.0]] {
        let e = x.aggregate(&ups, Some(&w), None).unwrap_err();
        assert_eq!(e.code, Code::InvalidWeight);
        assert!(e.message.contains("weights[0]"), "{}", e.message);
    }
    let c = [1.0f32, 2.0, 3.0];
    let e = x
        .aggregate(&[Update::Dense(&a), Update::Dense(&c)], None, None)
        .unwrap_err();
    assert_eq!(e.code, Code::LengthMismatch);
    assert!(e.message.contains("grads[1]"));
    assert_eq!(
        x.aggregate(&[], None, None).unwrap_err().code,
        Code::NoClients
    );
    assert_eq!(
        x.aggregate(&ups, Some(&[1.0]), None).unwrap_err().code,
        Code::LengthMismatch
    );
    let nan = [1.0f32, f32::NAN];
    let e = x
        .aggregate(&[Update::Dense(&a), Update::Dense(&nan)], None, None)
        .unwrap_err();
    assert_eq!(e.code, Code::NonFinite);
    assert!(e.message.contains("grads[1][1]"), "{}", e.message);
}

#[test]
fn streaming_equals_one_shot_and_merge_equals_one_pass() {
    for strategy in [
        Strategy::FedAvg,
        Strategy::WeightedAvg,
        Strategy::AsyncFedAvg,
        Strategy::Median,
        Strategy::MultiKrum,
    ] {
        let n = 3000;
        let m = 9;
        let gs: Vec<Vec<f32>> = (0..m).map(|i| randn(n, 500 + i as u64)).collect();
        let sp: Vec<CompressedGradient> = gs.iter().map(|g| sparse(g, 4)).collect();
        let opts = |i: usize| AddOptions {
            weight: 1.0 + i as f64,
            samples: 10.0 + i as f64,
            round: Some(3 + (i % 3) as u64),
        };
        let up = |i: usize| {
            if i.is_multiple_of(3) {
                Update::Compressed(&sp[i])
            } else {
                Update::Dense(&gs[i])
            }
        };
        let mut one = agg(strategy);
        for i in 0..m {
            one.add(&format!("n{i}"), up(i), opts(i)).unwrap();
        }
        let mut parts: Vec<Aggregator> = (0..3).map(|_| agg(strategy)).collect();
        for i in 0..m {
            parts[i % 3].add(&format!("n{i}"), up(i), opts(i)).unwrap();
        }
        let bufs: Vec<Vec<u8>> = parts.iter().map(partial::encode).collect();
        let mut root = agg(strategy);
        for b in &bufs {
            root.merge(partial::decode(b).unwrap()).unwrap();
        }
        // Merging the same partial twice is a duplicate.
        assert_eq!(
            root.merge(partial::decode(&bufs[0]).unwrap())
                .unwrap_err()
                .code,
            Code::DuplicateNode
        );
        let a = one.finish(Some(5)).unwrap();
        let b = root.finish(Some(5)).unwrap();
        close(&b, &a.iter().map(|&x| x as f64).collect::<Vec<_>>(), 1e-5);
        // Reference for the linear ones.
        if strategy.is_linear() {
            let dens: Vec<Vec<f32>> = (0..m)
                .map(|i| {
                    if i % 3 == 0 {
                        sp[i].to_dense()
                    } else {
                        gs[i].clone()
                    }
                })
                .collect();
            let w: Vec<f64> = (0..m)
                .map(|i| {
                    let o = opts(i);
                    let base = if strategy == Strategy::WeightedAvg {
                        o.weight
                    } else {
                        o.weight * o.samples
                    };
                    let s = if strategy == Strategy::AsyncFedAvg {
                        (1.0 + (5 - o.round.unwrap()) as f64).powf(-0.5)
                    } else {
                        1.0
                    };
                    base * s
                })
                .collect();
            close(&a, &ref_wmean(&dens, &w), 1e-5);
        }
    }
}

#[test]
fn streaming_errors_duplicate_and_min_participants() {
    let g = randn(10, 1);
    let mut cfg = Config::new(Strategy::FedAvg);
    cfg.min_participants = 2;
    let mut a = Aggregator::new(cfg).unwrap();
    assert_eq!(a.finish(None).unwrap_err().code, Code::NoClients);
    a.add("s1", Update::Dense(&g), AddOptions::default())
        .unwrap();
    assert!(!a.ready());
    assert_eq!(a.finish(None).unwrap_err().code, Code::NoClients);
    assert_eq!(
        a.add("s1", Update::Dense(&g), AddOptions::default())
            .unwrap_err()
            .code,
        Code::DuplicateNode
    );
    a.add(
        "s2",
        Update::Dense(&g),
        AddOptions {
            weight: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(a.ready());
    close(
        &a.finish(None).unwrap(),
        &g.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        1e-6,
    );
    assert_eq!(a.round, 1);
    // All-zero weights in a round.
    a.add(
        "s1",
        Update::Dense(&g),
        AddOptions {
            samples: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    a.add(
        "s2",
        Update::Dense(&g),
        AddOptions {
            samples: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.finish(None).unwrap_err().code, Code::ZeroTotalWeight);
}

#[test]
fn corrupt_partials_are_rejected_without_panic() {
    let g = randn(50, 1);
    let mut a = agg(Strategy::FedAvg);
    a.add("s1", Update::Dense(&g), AddOptions::default())
        .unwrap();
    let buf = partial::encode(&a);
    for cut in 0..buf.len() {
        assert_eq!(
            partial::decode(&buf[..cut]).unwrap_err().code,
            Code::CorruptData
        );
    }
    for i in 0..buf.len() {
        let mut b = buf.clone();
        b[i] ^= 0x10;
        assert_eq!(
            partial::decode(&b).unwrap_err().code,
            Code::CorruptData,
            "flip at {i}"
        );
    }
    assert!(partial::decode(&buf).is_ok());
}

#[test]
fn dp_noise_is_seeded_and_scaled_and_clipping_reported() {
    let gs: Vec<Vec<f32>> = (0..4).map(|i| randn(200_000, i)).collect();
    let ups: Vec<Update> = gs.iter().map(|g| Update::Dense(g)).collect();
    let mut cfg = Config::new(Strategy::FedAvg);
    cfg.clip_norm = Some(1.0);
    cfg.noise_multiplier = 2.0;
    cfg.seed = 42;
    let x = Aggregator::new(cfg.clone())
        .unwrap()
        .aggregate(&ups, None, None)
        .unwrap();
    let mut a = Aggregator::new(cfg.clone()).unwrap();
    let y = a.aggregate(&ups, None, None).unwrap();
    assert_eq!(x, y);
    assert_eq!(a.last.clipped, 4);
    let std = 2.0 * 1.0 * 0.25;
    assert!((a.last.noise_std - std).abs() < 1e-12);
    // Clipped mean has tiny norm (≤ 1), so the output is essentially the noise.
    let emp = (y.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
    assert!((emp - std).abs() < 0.01, "{emp} vs {std}");
    cfg.seed = 43;
    let z = Aggregator::new(cfg)
        .unwrap()
        .aggregate(&ups, None, None)
        .unwrap();
    assert_ne!(y, z);
}

#[test]
fn server_optimisers_match_reference_over_rounds() {
    for strategy in [Strategy::FedAvgM, Strategy::FedAdam, Strategy::FedYogi] {
        let n = 500;
        let cfg = Config::new(strategy);
        let mut a = Aggregator::new(cfg.clone()).unwrap();
        let x0 = randn(n, 77);
        a.set_global_model(x0.clone()).unwrap();
        let (mut x, mut m, mut v) = (
            x0.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            vec![0.0; n],
            vec![0.0; n],
        );
        for round in 0..4 {
            let gs: Vec<Vec<f32>> = (0..3).map(|i| randn(n, 1000 + round * 10 + i)).collect();
            let ups: Vec<Update> = gs.iter().map(|g| Update::Dense(g)).collect();
            let out = a.aggregate(&ups, None, None).unwrap();
            let d = ref_wmean(&gs, &[1.0; 3]);
            for j in 0..n {
                match strategy {
                    Strategy::FedAvgM => {
                        m[j] = cfg.momentum * m[j] + d[j];
                        x[j] += cfg.server_lr * m[j];
                    }
                    _ => {
                        m[j] = cfg.beta1 * m[j] + (1.0 - cfg.beta1) * d[j];
                        let g2 = d[j] * d[j];
                        v[j] = if strategy == Strategy::FedAdam {
                            cfg.beta2 * v[j] + (1.0 - cfg.beta2) * g2
                        } else {
                            v[j] - (1.0 - cfg.beta2) * g2 * (v[j] - g2).signum()
                        };
                        x[j] += cfg.server_lr * m[j] / (v[j].sqrt() + cfg.tau);
                    }
                }
            }
            close(&out, &x, 1e-4);
        }
    }
}

#[test]
fn compressed_client_output_aggregates_like_its_decompression() {
    let mut c = ClientState::new(CompressionConfig {
        compression_type: CompressionType::TopK,
        sparsity: 0.9,
        ..Default::default()
    })
    .unwrap();
    let g = randn(10_000, 3);
    let msg = c.compress(&g).unwrap();
    let d = msg.to_dense();
    let ups = [Update::Compressed(&msg), Update::Dense(&d)];
    let out = agg(Strategy::FedAvg).aggregate(&ups, None, None).unwrap();
    close(&out, &d.iter().map(|&x| x as f64).collect::<Vec<_>>(), 1e-6);
}

#[test]
fn sorting_network_sorts_every_count_up_to_70() {
    let mut r = Rng::new(5);
    for m in 1..=70usize {
        let net = robust::sorting_network(m);
        for _ in 0..50 {
            let mut v: Vec<f32> = (0..m).map(|_| (r.below(7) as f32) - 3.0).collect();
            for &(a, b) in &net {
                if v[a] > v[b] {
                    v.swap(a, b);
                }
            }
            assert!(v.windows(2).all(|w| w[0] <= w[1]), "m={m}: {v:?}");
        }
    }
}
