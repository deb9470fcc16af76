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
        let bufs: Vec<Vec<u8>> = parts.iter().map(|a| partial::encode(a).unwrap()).collect();
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
    let buf = partial::encode(&a).unwrap();
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
fn a_refused_server_step_leaves_the_optimiser_state_and_the_model_as_they_were() {
    for strategy in [Strategy::FedAvgM, Strategy::FedAdam, Strategy::FedYogi] {
        // A step that overflows f32 (the learning rate times a large mean update).
        let mut cfg = Config::new(strategy);
        cfg.server_lr = 1e30;
        let mut a = Aggregator::new(cfg.clone()).unwrap();
        let tiny = [1e-30f32, -2e-30];
        let want = Aggregator::new(cfg.clone())
            .unwrap()
            .aggregate(&[Update::Dense(&tiny)], None, None)
            .unwrap();
        let huge = [1e10f32, 1e10];
        let e = a
            .aggregate(&[Update::Dense(&huge)], None, None)
            .unwrap_err();
        assert_eq!(e.code, Code::NonFinite, "{strategy:?}");
        // The next round behaves as on a fresh aggregator: the moments were not touched.
        let got = a.aggregate(&[Update::Dense(&tiny)], None, None).unwrap();
        assert_eq!(bits(&got), bits(&want), "{strategy:?}");
        assert!(got.iter().all(|x| x.is_finite()));

        // A finite step that would carry the global model out of the f32 range: refused,
        // model and moments unchanged, never an infinite model.
        let mut cfg = Config::new(strategy);
        cfg.server_lr = 1e38;
        let mut a = Aggregator::new(cfg).unwrap();
        a.set_global_model(vec![3.0e38, 1.0]).unwrap();
        let before = a.server.clone();
        let d = [1.0f32, 1.0];
        let e = a.aggregate(&[Update::Dense(&d)], None, None).unwrap_err();
        assert_eq!(e.code, Code::NonFinite, "{strategy:?}");
        assert!(e.message.contains("unchanged"), "{}", e.message);
        assert_eq!(a.server, before, "{strategy:?}");
    }
    // Momentum accumulating round after round until the model overflows: every returned
    // model is finite, and the refused round keeps the last good one.
    let mut cfg = Config::new(Strategy::FedAvgM);
    cfg.server_lr = 1e21;
    let mut a = Aggregator::new(cfg).unwrap();
    a.set_global_model(vec![1.0, 1.0]).unwrap();
    let d = [1e17f32, 1e17];
    let mut last = vec![1.0f32, 1.0];
    let mut refused = false;
    for _ in 0..6 {
        match a.aggregate(&[Update::Dense(&d)], None, None) {
            Ok(x) => {
                assert!(!refused, "a round succeeded after the model overflowed");
                assert!(x.iter().all(|v| v.is_finite()), "{x:?}");
                last = x;
            }
            Err(e) => {
                assert_eq!(e.code, Code::NonFinite);
                assert_eq!(a.server.model.as_deref(), Some(&last[..]));
                refused = true;
            }
        }
    }
    assert!(
        refused,
        "1e21 × 1e17 accumulated must overflow f32 within six rounds"
    );
}

#[test]
fn a_refused_finish_discards_the_round_whole_and_keeps_the_optimiser_state() {
    for strategy in [Strategy::FedAvgM, Strategy::FedAdam, Strategy::FedYogi] {
        let mut a = agg(strategy);
        let good = [1.0f32, 2.0, 3.0];
        let huge = [1.0f32, 2e19, 3.0];
        a.add("sat-1", Update::Dense(&good), AddOptions::default())
            .unwrap();
        a.add("sat-2", Update::Dense(&huge), AddOptions::default())
            .unwrap();
        let e = a.finish(None).unwrap_err();
        assert_eq!(e.code, Code::NonFinite, "{strategy:?}");
        assert!(
            e.message.ends_with("the round was discarded"),
            "{}",
            e.message
        );
        // Nothing half-kept: no participants, no weight, the same nodes may send again.
        let st = a.stats();
        assert_eq!((st.pending_participants, st.pending_weight), (0, 0.0));
        assert_eq!((a.round, a.completed, a.server.steps), (0, 0, 0));
        a.add("sat-1", Update::Dense(&good), AddOptions::default())
            .unwrap();
        let got = a.finish(None).unwrap();
        // As if the refused round never happened.
        let mut fresh = agg(strategy);
        fresh
            .add("sat-1", Update::Dense(&good), AddOptions::default())
            .unwrap();
        assert_eq!(
            bits(&got),
            bits(&fresh.finish(None).unwrap()),
            "{strategy:?}"
        );
        assert_eq!(a.stats().updates_received, 1);
    }
}

#[test]
fn optimiser_settings_that_f32_cannot_hold_are_refused_up_front() {
    for (lr, tau) in [(1e39, 1e-3), (1e-50, 1e-3), (1e-2, 1e-50), (1e-2, 1e39)] {
        let mut c = Config::new(Strategy::FedAdam);
        c.server_lr = lr;
        c.tau = tau;
        let e = Aggregator::new(c).unwrap_err();
        assert_eq!(e.code, Code::InvalidArg, "lr {lr} tau {tau}");
        assert!(e.message.contains("f32's range"), "{}", e.message);
    }
    // Extreme but representable values are accepted, and a zero update steps by 0.
    let mut c = Config::new(Strategy::FedAdam);
    c.server_lr = 3e38;
    c.tau = 1e-44;
    let step = Aggregator::new(c)
        .unwrap()
        .aggregate(&[Update::Dense(&[0.0f32, 0.0])], None, None)
        .unwrap();
    assert_eq!(step, vec![0.0, 0.0]);
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

// ---- aggregate_sparse / sparse_sum -------------------------------------------------------

fn sparse_of(length: usize, indices: Vec<u32>, values: Vec<f32>) -> CompressedGradient {
    CompressedGradient {
        length,
        indices,
        values,
        dense: false,
        compression_type: CompressionType::TopK,
        encoding: crate::core::compression::ValueEncoding::F32,
        quantized: None,
        round: 0,
    }
}

/// A random sparse update of length n: `kind` 0 = random density, 1 = empty, 2 = the
/// indices of `like` (full overlap), 3 = positions ≡ r (mod 3) only (disjoint from other
/// residues), 4 = one dense run crossing chunk boundaries.
fn random_sparse(
    r: &mut Rng,
    n: usize,
    kind: u64,
    like: Option<&CompressedGradient>,
) -> CompressedGradient {
    let indices: Vec<u32> = match kind {
        1 => Vec::new(),
        2 if like.is_some() => like.unwrap().indices.clone(),
        3 => {
            let res = r.below(3) as u32;
            (0..n as u32)
                .filter(|i| i % 3 == res && r.uniform() < 0.2)
                .collect()
        }
        4 => {
            let a = r.below(n as u64) as u32;
            let b = (a as u64 + 1 + r.below(3 * CHUNK as u64)).min(n as u64) as u32;
            (a..b).collect()
        }
        _ => {
            let p = [0.001, 0.01, 0.1, 0.5][r.below(4) as usize];
            (0..n as u32).filter(|_| r.uniform() < p).collect()
        }
    };
    let values = indices.iter().map(|_| r.normal() as f32).collect();
    sparse_of(n, indices, values)
}

/// The brute force: a dense f32 accumulator summed input by input in list order, and the
/// positions any input of non-zero weight carries.
fn brute_sparse_sum(gs: &[CompressedGradient], w: &[f32], n: usize) -> (Vec<u32>, Vec<f32>) {
    let mut acc = vec![0.0f32; n];
    let mut touched = vec![false; n];
    for (g, &wi) in gs.iter().zip(w) {
        if wi == 0.0 {
            continue;
        }
        for (&i, &v) in g.indices.iter().zip(&g.values) {
            acc[i as usize] += wi * v;
            touched[i as usize] = true;
        }
    }
    let idx: Vec<u32> = (0..n as u32).filter(|&i| touched[i as usize]).collect();
    let vals = idx.iter().map(|&i| acc[i as usize]).collect();
    (idx, vals)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn sparse_sum_equals_brute_force_and_dense_kernel_bit_for_bit() {
    let mut r = Rng::new(41);
    // n below, at and around the chunk size, not a multiple of it, and large enough for the
    // parallel path (≥ 64 Ki entries over ≥ 2 chunks).
    let sizes = [
        1,
        2,
        63,
        64,
        65,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK + 17,
        200_003,
        1_000_003,
    ];
    let mut parallel_cases = 0;
    for (trial, &n) in sizes.iter().cycle().take(3 * sizes.len()).enumerate() {
        let m = 1 + r.below(7) as usize;
        let mut gs: Vec<CompressedGradient> = Vec::new();
        for _ in 0..m {
            let kind = r.below(5);
            let g = random_sparse(&mut r, n, kind, gs.last());
            gs.push(g);
        }
        let w: Vec<f32> = (0..m)
            .map(|i| {
                if i % 4 == 3 {
                    0.0
                } else {
                    (r.uniform() + 0.05) as f32
                }
            })
            .collect();
        let inputs: Vec<sparse_sum::SparseInput> = gs
            .iter()
            .zip(&w)
            .map(|(g, &weight)| sparse_sum::SparseInput {
                indices: &g.indices,
                values: &g.values,
                weight,
            })
            .collect();
        let got = sparse_sum::weighted_sum(&inputs, n);
        let (idx, vals) = brute_sparse_sum(&gs, &w, n);
        assert!(got.finite);
        assert_eq!(got.indices, idx, "trial {trial}, n {n}, m {m}");
        assert_eq!(bits(&got.values), bits(&vals), "trial {trial}, n {n}");
        // The dense kernel gives the same bits at every position (zeros elsewhere).
        let ups: Vec<Update> = gs.iter().map(Update::Compressed).collect();
        let (dense, _) = linear::weighted_sum(&ups, &w, n).unwrap();
        let mut densified = vec![0.0f32; n];
        for (&i, &v) in got.indices.iter().zip(&got.values) {
            densified[i as usize] = v;
        }
        assert_eq!(bits(&densified), bits(&dense), "trial {trial}, n {n}");
        // So does the overwriting kernel (sparse inputs alone: summed in a scratch and
        // streamed out), into an output full of garbage and not 16-byte aligned.
        let off = 1 + trial % 3;
        let mut garbage = vec![f32::NAN; n + off];
        assert!(linear::sum_into(&mut garbage[off..], &ups, &w));
        assert_eq!(
            bits(&garbage[off..]),
            bits(&dense),
            "sum_into, trial {trial}, n {n}"
        );
        assert!(garbage[..off].iter().all(|x| x.is_nan()));
        let nnz: usize = gs.iter().map(|g| g.nnz()).sum();
        if nnz >= PAR_THRESHOLD && n > CHUNK {
            parallel_cases += 1;
        }
    }
    assert!(parallel_cases >= 2, "only {parallel_cases} parallel cases");
}

#[test]
fn overflowing_sparse_sums_are_reported_by_every_kernel() {
    // f32::MAX twice overflows to +Inf at one position only, deep in a large output.
    let n = 3 * CHUNK + 5;
    let at = 2 * CHUNK + 7;
    let a = sparse_of(n, vec![1, at as u32], vec![1.0, f32::MAX]);
    let b = sparse_of(n, vec![at as u32, n as u32 - 1], vec![f32::MAX, 2.0]);
    let ups = [Update::Compressed(&a), Update::Compressed(&b)];
    let mut out = vec![0.0f32; n];
    assert!(!linear::sum_into(&mut out, &ups, &[1.0, 1.0]));
    assert_eq!(out[at], f32::INFINITY);
    let (dense, finite) = linear::weighted_sum(&ups, &[1.0, 1.0], n).unwrap();
    assert!(!finite && dense[at] == f32::INFINITY);
    let inputs: Vec<sparse_sum::SparseInput> = [&a, &b]
        .iter()
        .map(|g| sparse_sum::SparseInput {
            indices: &g.indices,
            values: &g.values,
            weight: 1.0,
        })
        .collect();
    assert!(!sparse_sum::weighted_sum(&inputs, n).finite);
    // Weights that keep it finite: every kernel says so.
    assert!(linear::sum_into(&mut out, &ups, &[0.5, 0.5]));
    assert_eq!(out[at], f32::MAX);
}

#[test]
fn sparse_walk_finds_each_window_in_any_order() {
    let mut r = Rng::new(47);
    for trial in 0..40 {
        let n = 1 + r.below(5000) as usize;
        let m = 1 + r.below(4) as usize;
        let gs: Vec<CompressedGradient> = (0..m)
            .map(|_| {
                let kind = r.below(5);
                random_sparse(&mut r, n, kind, None)
            })
            .collect();
        let width = 1 + r.below(300) as usize;
        let mut windows: Vec<usize> = (0..n.div_ceil(width)).collect();
        // Mostly ascending runs, with some jumps back and forth.
        if trial % 2 == 1 {
            for i in 0..windows.len() {
                if r.below(4) == 0 {
                    let j = r.below(windows.len() as u64) as usize;
                    windows.swap(i, j);
                }
            }
        }
        let mut walk = input::SparseWalk::new(m);
        for &wi in &windows {
            let (start, end) = (wi * width, ((wi + 1) * width).min(n));
            for (k, g) in gs.iter().enumerate() {
                let mut got = Vec::new();
                let count = walk.for_each(k, (&g.indices, &g.values), start, end, |j, v| {
                    got.push((j + start, v))
                });
                let want: Vec<(usize, f32)> = g
                    .indices
                    .iter()
                    .zip(&g.values)
                    .filter(|(&i, _)| (start..end).contains(&(i as usize)))
                    .map(|(&i, &v)| (i as usize, v))
                    .collect();
                assert_eq!(got, want, "trial {trial}, window {wi}, input {k}");
                assert_eq!(count, want.len());
                let mut pos = Vec::new();
                walk.for_each_position(k, &g.indices, start, end, |j| pos.push(j + start));
                assert_eq!(pos, want.iter().map(|p| p.0).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn robust_strategies_read_sparse_inputs_like_their_dense_form() {
    // Large enough for many parallel blocks, so each worker's walk resumes and restarts.
    let n = 200_003;
    let mut r = Rng::new(53);
    let gs: Vec<CompressedGradient> = (0..7).map(|_| random_sparse(&mut r, n, 0, None)).collect();
    let dense: Vec<Vec<f32>> = gs.iter().map(|g| g.to_dense()).collect();
    let sp: Vec<Update> = gs.iter().map(Update::Compressed).collect();
    let de: Vec<Update> = dense.iter().map(|d| Update::Dense(d)).collect();
    for s in [
        Strategy::Median,
        Strategy::TrimmedMean,
        Strategy::Krum,
        Strategy::MultiKrum,
    ] {
        let a = agg(s).aggregate(&sp, None, None).unwrap();
        let b = agg(s).aggregate(&de, None, None).unwrap();
        assert_eq!(bits(&a), bits(&b), "{s:?}");
    }
}

#[test]
fn sparse_sum_of_nothing_and_of_zero_weights_is_empty() {
    let a = sparse_of(10, vec![1, 5], vec![1.0, 2.0]);
    let e = sparse_of(10, vec![], vec![]);
    fn inp(g: &CompressedGradient, weight: f32) -> sparse_sum::SparseInput<'_> {
        sparse_sum::SparseInput {
            indices: &g.indices,
            values: &g.values,
            weight,
        }
    }
    assert_eq!(sparse_sum::weighted_sum(&[], 10).indices.len(), 0);
    let s = sparse_sum::weighted_sum(&[inp(&e, 1.0), inp(&a, 0.0)], 10);
    assert!(s.indices.is_empty() && s.values.is_empty() && s.finite);
    let s = sparse_sum::weighted_sum(&[inp(&e, 1.0), inp(&a, 2.0)], 10);
    assert_eq!((s.indices, s.values), (vec![1, 5], vec![2.0, 4.0]));
}

#[test]
fn aggregate_sparse_equals_aggregate_densified_bit_for_bit() {
    let mut r = Rng::new(43);
    for trial in 0..24u64 {
        let n = [5, CHUNK + 3, 150_001][trial as usize % 3];
        let m = 1 + r.below(6) as usize;
        let mut gs: Vec<CompressedGradient> = Vec::new();
        for i in 0..m {
            // At least one non-empty input of non-zero weight (the first).
            let kind = if i == 0 { 0 } else { r.below(5) };
            let g = random_sparse(&mut r, n, kind, gs.last());
            gs.push(g);
        }
        if gs[0].indices.is_empty() {
            gs[0] = sparse_of(n, vec![0], vec![1.5]);
        }
        let ups: Vec<Update> = gs.iter().map(Update::Compressed).collect();
        let w: Vec<f64> = (0..m)
            .map(|i| {
                if i % 3 == 2 {
                    0.0
                } else {
                    r.uniform() * 10.0 + 0.1
                }
            })
            .collect();
        let st: Vec<f64> = (0..m).map(|_| r.below(4) as f64).collect();
        let strategy = [
            Strategy::FedAvg,
            Strategy::WeightedAvg,
            Strategy::AsyncFedAvg,
        ][trial as usize % 3];
        let mut cfg = Config::new(strategy);
        if trial % 4 == 1 {
            cfg.clip_norm = Some(2.0);
        }
        let stale = (strategy == Strategy::AsyncFedAvg).then_some(&st[..]);
        let mut a = Aggregator::new(cfg.clone()).unwrap();
        let mut b = Aggregator::new(cfg).unwrap();
        let dense = a.aggregate(&ups, Some(&w), stale).unwrap();
        let sp = b.aggregate_sparse(&ups, Some(&w), stale).unwrap();
        assert_eq!(sp.length, n);
        assert!(!sp.dense);
        assert_eq!(sp.compression_type, CompressionType::TopK);
        assert!(sp.indices.windows(2).all(|p| p[0] < p[1]));
        assert_eq!(bits(&sp.to_dense()), bits(&dense), "trial {trial}");
        // The index set is the union of the inputs of non-zero weight.
        let mut union: Vec<u32> = gs
            .iter()
            .zip(&w)
            .filter(|(_, &wi)| wi != 0.0)
            .flat_map(|(g, _)| g.indices.iter().copied())
            .collect();
        union.sort_unstable();
        union.dedup();
        assert_eq!(sp.indices, union, "trial {trial}");
        // The same round bookkeeping as aggregate.
        assert_eq!(a.stats(), b.stats());
        // And it travels: the wire round trip gives it back.
        let back = crate::core::wire::decode(&crate::core::wire::encode(&sp)).unwrap();
        assert_eq!(back, sp);
    }
}

#[test]
fn aggregate_sparse_keeps_exact_zero_sums_and_reports_its_round() {
    let g = sparse_of(8, vec![1, 3, 6], vec![0.5, -2.0, 4.0]);
    let h = sparse_of(8, vec![1, 3, 7], vec![-0.5, 2.0, 0.0]);
    let ups = [Update::Compressed(&g), Update::Compressed(&h)];
    let mut x = agg(Strategy::FedAvg);
    x.aggregate(&ups, None, None).unwrap();
    let s = x.aggregate_sparse(&ups, None, None).unwrap();
    assert_eq!(s.indices, vec![1, 3, 6, 7]);
    assert_eq!(bits(&s.values), bits(&[0.0, 0.0, 2.0, 0.0]));
    assert_eq!(s.round, 1);
    assert_eq!(x.round, 2);
    assert_eq!(x.completed, 2);
}

#[test]
fn aggregate_sparse_errors_match_aggregate_and_refuse_the_dense_forms() {
    let a = sparse_of(4, vec![0, 2], vec![1.0, 2.0]);
    let b = sparse_of(4, vec![1], vec![3.0]);
    let c = sparse_of(5, vec![1], vec![3.0]);
    let ups = [Update::Compressed(&a), Update::Compressed(&b)];
    let mut x = agg(Strategy::FedAvg);
    let code = |r: Result<CompressedGradient>| r.unwrap_err();
    assert_eq!(
        code(x.aggregate_sparse(&[], None, None)).code,
        Code::NoClients
    );
    let e = code(x.aggregate_sparse(&[ups[0], ups[1], Update::Compressed(&c)], None, None));
    assert_eq!(e.code, Code::LengthMismatch);
    assert!(e.message.contains("grads[2]"), "{}", e.message);
    assert_eq!(
        code(x.aggregate_sparse(&ups, Some(&[1.0]), None)).code,
        Code::LengthMismatch
    );
    assert_eq!(
        code(x.aggregate_sparse(&ups, Some(&[0.0, 0.0]), None)).code,
        Code::ZeroTotalWeight
    );
    let e = code(x.aggregate_sparse(&ups, Some(&[1.0, -1.0]), None));
    assert_eq!(e.code, Code::InvalidWeight);
    assert!(e.message.contains("weights[1]"));
    assert_eq!(
        code(x.aggregate_sparse(&ups, None, Some(&[0.0, 1.0]))).code,
        Code::InvalidArg
    );
    let nan = sparse_of(4, vec![0, 3], vec![1.0, f32::NAN]);
    let e = code(x.aggregate_sparse(&[ups[0], Update::Compressed(&nan)], None, None));
    assert_eq!(e.code, Code::NonFinite);
    assert!(e.message.contains("grads[1][3]"), "{}", e.message);
    // Ten f32::MAX at one position with weights 0.1 (rounded up in f32) overflow the sum,
    // in both forms.
    let big = sparse_of(4, vec![2], vec![f32::MAX]);
    let bigs = [Update::Compressed(&big); 10];
    let dense_err = x.aggregate(&bigs, None, None).unwrap_err();
    let e = code(x.aggregate_sparse(&bigs, None, None));
    assert_eq!(e.code, Code::NonFinite);
    assert_eq!(e, dense_err);
    assert!(e.message.contains("index 2"), "{}", e.message);
    // Dense inputs, in any form.
    let d = [1.0f32, 2.0, 3.0, 4.0];
    let e = code(x.aggregate_sparse(&[ups[0], Update::Dense(&d)], None, None));
    assert_eq!(e.code, Code::InvalidArg);
    assert!(e.message.contains("grads[1]"), "{}", e.message);
    let mut dc = sparse_of(4, vec![], d.to_vec());
    dc.dense = true;
    dc.compression_type = CompressionType::None;
    let e = code(x.aggregate_sparse(&[Update::Compressed(&dc)], None, None));
    assert_eq!(e.code, Code::InvalidArg);
    // Strategies whose result is not a plain weighted mean, and noise.
    for s in [
        Strategy::Median,
        Strategy::TrimmedMean,
        Strategy::Krum,
        Strategy::MultiKrum,
        Strategy::FedAvgM,
        Strategy::FedAdam,
        Strategy::FedYogi,
    ] {
        let e = code(agg(s).aggregate_sparse(&ups, None, None));
        assert_eq!(e.code, Code::InvalidArg);
        assert!(e.message.contains(s.as_str()), "{}", e.message);
    }
    let mut cfg = Config::new(Strategy::FedAvg);
    cfg.clip_norm = Some(1.0);
    cfg.noise_multiplier = 1.0;
    let e = code(
        Aggregator::new(cfg)
            .unwrap()
            .aggregate_sparse(&ups, None, None),
    );
    assert_eq!(e.code, Code::InvalidArg);
    // Nothing counted for the refused calls.
    assert_eq!(x.completed, 0);
}

#[test]
fn aggregate_sparse_into_reuses_out_and_equals_the_fresh_result() {
    let mut r = Rng::new(47);
    let n = 3 * CHUNK + 5;
    let gs: Vec<CompressedGradient> = (0..5).map(|_| random_sparse(&mut r, n, 0, None)).collect();
    let ups: Vec<Update> = gs.iter().map(Update::Compressed).collect();
    let w = [1.0, 2.0, 0.5, 3.0, 1.0];
    let fresh = agg(Strategy::FedAvg)
        .aggregate_sparse(&ups, Some(&w), None)
        .unwrap();
    // Reusing a bigger result of another length, type and encoding: same content as fresh,
    // in the same buffers.
    let mut out = random_sparse(&mut r, 2 * n, 0, None);
    out.compression_type = CompressionType::TopKQuantized;
    out.encoding = crate::core::compression::ValueEncoding::Quantized { bits: 4 };
    out.indices.reserve(fresh.nnz());
    out.values.reserve(fresh.nnz());
    let (pi, pv) = (out.indices.as_ptr(), out.values.as_ptr());
    let mut x = agg(Strategy::FedAvg);
    x.aggregate_sparse_into(&ups, Some(&w), None, &mut out)
        .unwrap();
    assert_eq!(out, fresh);
    assert_eq!((out.indices.as_ptr(), out.values.as_ptr()), (pi, pv));
    assert_eq!(x.round, 1);
    // A refused call leaves it as it was.
    let before = out.clone();
    let e = x
        .aggregate_sparse_into(&ups, Some(&[1.0]), None, &mut out)
        .unwrap_err();
    assert_eq!(e.code, Code::LengthMismatch);
    assert_eq!(out, before);
    assert_eq!(x.round, 1);
    // So does a non-finite input (checked before summing, so `out` is not touched).
    let mut bad = gs[2].clone();
    bad.values[1] = f32::NAN;
    let bad_at = bad.indices[1];
    let mixed = [ups[0], ups[1], Update::Compressed(&bad)];
    let e = x
        .aggregate_sparse_into(&mixed, None, None, &mut out)
        .unwrap_err();
    assert_eq!(e.code, Code::NonFinite);
    assert!(
        e.message.contains(&format!("grads[2][{bad_at}]")),
        "{}",
        e.message
    );
    assert_eq!(out, before);
}

#[test]
fn non_finite_sparse_inputs_are_found_by_the_sum_itself() {
    // `aggregate` checks sparse inputs inside the summing pass, not before it: a NaN or
    // ±Inf deep in a large update (several runs of chunks, on several threads) must still
    // be reported, naming the update and the position, by every kernel: sparse inputs
    // alone into `out` (staged), alone into a new result, and mixed with a dense input.
    let mut r = Rng::new(53);
    let n = 40 * CHUNK + 3;
    let gs: Vec<CompressedGradient> = (0..4).map(|_| random_sparse(&mut r, n, 0, None)).collect();
    let dense: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    for bad_value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut bad = gs[2].clone();
        let k = bad.nnz() * 3 / 4;
        bad.values[k] = bad_value;
        let at = bad.indices[k];
        let sparse_only = [
            Update::Compressed(&gs[0]),
            Update::Compressed(&gs[1]),
            Update::Compressed(&bad),
            Update::Compressed(&gs[3]),
        ];
        let with_dense = [
            Update::Compressed(&gs[0]),
            Update::Dense(&dense),
            Update::Compressed(&bad),
        ];
        let want = format!("grads[2][{at}]");
        for ups in [&sparse_only[..], &with_dense[..]] {
            let mut out = vec![0.0f32; n];
            let e = agg(Strategy::FedAvg)
                .aggregate_into(ups, None, None, Some(&mut out))
                .unwrap_err();
            assert_eq!(e.code, Code::NonFinite, "{bad_value}");
            assert!(e.message.contains(&want), "{bad_value}: {}", e.message);
            let e = agg(Strategy::WeightedAvg)
                .aggregate(ups, None, None)
                .unwrap_err();
            assert_eq!(e.code, Code::NonFinite, "{bad_value}");
            assert!(e.message.contains(&want), "{bad_value}: {}", e.message);
        }
    }
    // +Inf and −Inf at the same position of two updates: each is named, first one first.
    let p = gs[0].indices[5];
    let a = sparse_of(n, vec![p], vec![f32::INFINITY]);
    let b = sparse_of(n, vec![p], vec![f32::NEG_INFINITY]);
    let mut out = vec![0.0f32; n];
    let e = agg(Strategy::FedAvg)
        .aggregate_into(
            &[Update::Compressed(&a), Update::Compressed(&b)],
            None,
            None,
            Some(&mut out),
        )
        .unwrap_err();
    assert!(
        e.message.contains(&format!("grads[0][{p}] is inf")),
        "{}",
        e.message
    );
}
