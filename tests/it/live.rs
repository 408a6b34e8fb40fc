//! The live state machine (`LiveStream`) against file analysis.

use synthscan::detect::{Alert, AlertState, LiveEvent};
use synthscan::{AudioSource, Detector, FileSource, LivePolicy, LiveStream, LoadedModel, OnnxScorer, analyze_source};

use crate::shipped_model;

fn samples(path: &std::path::Path) -> (u32, usize, Vec<f32>) {
    let mut src = FileSource::open(path).unwrap();
    let (rate, ch) = (src.info().sample_rate_hz, src.info().channels);
    let mut all = Vec::new();
    while let Some(c) = src.next_chunk().unwrap() {
        all.extend(c.samples);
    }
    (rate, ch, all)
}

/// Runs a recording through a live stream in chunks of `frames`; returns events and analysis.
fn live_run(
    detector: &Detector,
    scorer: &mut OnnxScorer,
    file: &std::path::Path,
    frames: usize,
) -> (Vec<LiveEvent>, synthscan::Analysis) {
    live_run_samples(detector, scorer, &samples(file), frames, LivePolicy::default())
}

/// Runs decoded samples (as [`samples`] returns them) through a live stream with `policy`.
fn live_run_samples(
    detector: &Detector,
    scorer: &mut OnnxScorer,
    (rate, ch, all): &(u32, usize, Vec<f32>),
    frames: usize,
    policy: LivePolicy,
) -> (Vec<LiveEvent>, synthscan::Analysis) {
    let mut live = LiveStream::new(detector, *rate, *ch, policy).unwrap();
    let mut events = Vec::new();
    for piece in all.chunks(frames * ch) {
        live.push(piece, scorer, &mut events).unwrap();
    }
    let analysis = live.finish(scorer, &mut events).unwrap();
    (events, analysis)
}

/// The alert events, raised and cleared.
fn alert_events(events: &[LiveEvent]) -> impl Iterator<Item = &Alert> {
    events.iter().filter_map(|e| match e {
        LiveEvent::Alert(a) => Some(a),
        _ => None,
    })
}

/// The alerts raised.
fn raised_alerts(events: &[LiveEvent]) -> impl Iterator<Item = &Alert> {
    alert_events(events).filter(|a| a.state == AlertState::Raised)
}

/// Stream times of the alerts raised.
fn raised(events: &[LiveEvent]) -> Vec<f64> {
    raised_alerts(events).map(|a| a.time_s).collect()
}

/// Asserts that a live stream refuses `policy` as a configuration error.
fn assert_config_error(policy: LivePolicy, what: &str) {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let err = LiveStream::new(&detector, 16_000, 1, policy).unwrap_err();
    assert!(matches!(err, synthscan::Error::Config(_)), "{what}: {err}");
}

fn sample(name: &str) -> std::path::PathBuf {
    crate::root().join("samples").join(name)
}

#[test]
fn live_summary_equals_file_analysis_and_ticks_do_not_depend_on_chunking() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    for name in ["synthetic_robocall.wav", "genuine_jfk.wav"] {
        let path = sample(name);
        let mut src = FileSource::open(&path).unwrap();
        let whole = analyze_source(&detector, &mut src, &mut scorer, 32).unwrap();
        let (ev_a, a) = live_run(&detector, &mut scorer, &path, 320);
        let (ev_b, b) = live_run(&detector, &mut scorer, &path, 4093);
        for live in [&a, &b] {
            assert_eq!(live.verdict, whole.verdict, "{name}");
            // Batch 1 vs batch 32 inside ONNX Runtime: logits agree to ~1e-6.
            assert!((live.score.unwrap() - whole.score.unwrap()).abs() < 1e-4, "{name}");
            assert_eq!(live.channels[0].windows.len(), whole.channels[0].windows.len());
            assert!((live.speech_s() - whole.speech_s()).abs() < 1e-9);
        }
        // Regular updates fall on 250 ms ticks of stream time whatever the chunking.
        let ticks = |ev: &[LiveEvent]| -> Vec<LiveEvent> {
            ev.iter()
                .filter(|e| matches!(e, LiveEvent::Update(u) if (u.time_s * 4.0).fract() == 0.0))
                .cloned()
                .collect()
        };
        assert_eq!(ticks(&ev_a), ticks(&ev_b), "{name}");
        let n_ticks = ticks(&ev_a).len() as f64;
        assert!(
            (n_ticks - (whole.duration_s * 4.0).floor()).abs() <= 1.0,
            "{name}: {n_ticks} ticks"
        );
        let alerts = |ev: &[LiveEvent]| alert_events(ev).cloned().collect::<Vec<_>>();
        assert_eq!(alerts(&ev_a), alerts(&ev_b), "{name}");
    }
}

#[test]
fn the_synthetic_sample_raises_an_alert_within_seconds_and_the_genuine_one_does_not() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let (events, _) = live_run(&detector, &mut scorer, &sample("synthetic_robocall.wav"), 320);
    let raised = raised(&events);
    assert_eq!(raised.len(), 1, "one alert, no flapping: {raised:?}");
    // 4.0 s with the shipped wideband threshold (0.9625): the 3 s mean dips under it at 2.75 s and
    // the 1 s hold starts again (2.5 s at an earlier single threshold of 0.8504).
    assert!(raised[0] < 4.5, "alert at {} s", raised[0]);
    // The first score comes as soon as the first 1 s window is complete.
    let first = events
        .iter()
        .find_map(|e| match e {
            LiveEvent::Update(u) if u.score.is_some() => Some(u.time_s),
            _ => None,
        })
        .unwrap();
    assert!(first <= 1.1, "first score at {first} s");
    for name in ["genuine_jfk.wav", "genuine_phone_prompt.wav"] {
        let (events, _) = live_run(&detector, &mut scorer, &sample(name), 320);
        assert!(alert_events(&events).next().is_none(), "{name} raised an alert");
    }
}

#[test]
fn an_alert_clears_once_genuine_speech_follows_for_longer_than_the_hold() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let (rate, ch, mut all) = samples(&sample("synthetic_robocall.wav"));
    let synthetic_s = all.len() as f64 / f64::from(rate);
    let (rate_b, _, genuine) = samples(&sample("genuine_jfk.wav"));
    assert_eq!(rate, rate_b);
    all.extend(genuine);
    let policy = LivePolicy::default();
    let mut live = LiveStream::new(&detector, rate, ch, policy.clone()).unwrap();
    let mut events = Vec::new();
    for piece in all.chunks(320) {
        live.push(piece, &mut scorer, &mut events).unwrap();
    }
    live.finish(&mut scorer, &mut events).unwrap();
    let alerts: Vec<&Alert> = alert_events(&events).collect();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0].state, AlertState::Raised);
    assert!(alerts[0].time_s < synthetic_s);
    assert_eq!(alerts[1].state, AlertState::Cleared);
    // The genuine speech must first outweigh the synthetic windows in the 3 s smoothing span,
    // then stay below the release level for the hold.
    assert!(
        alerts[1].time_s >= synthetic_s + policy.clear_hold_s,
        "cleared at {} s, genuine speech from {synthetic_s} s",
        alerts[1].time_s
    );
    // Each event names the level it crossed (4 decimals in the event).
    let threshold = detector.threshold_for(rate);
    assert!(
        (alerts[0].level - (threshold + policy.raise_margin)).abs() <= 5e-5,
        "{alerts:?}"
    );
    assert!(
        (alerts[1].level - (threshold - policy.release_margin)).abs() <= 5e-5,
        "{alerts:?}"
    );
    assert!(alerts[1].score < alerts[1].level + 5e-5, "{alerts:?}");
    assert_eq!(live.alerts_raised(), 1);
}

#[test]
fn an_alert_waits_until_the_score_has_held_above_the_threshold() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    // The hold is what is tested, not the shipped operating point: at 0.85 the robocall's smoothed
    // score stays above the threshold for over 2 s (at the shipped wideband 0.9625 it does not).
    let detector = Detector::new(model.manifest.clone())
        .unwrap()
        .with_threshold(0.85)
        .unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let robocall = samples(&sample("synthetic_robocall.wav"));
    let at = |hold: f64, scorer: &mut OnnxScorer| {
        let policy = LivePolicy {
            raise_hold_s: hold,
            ..LivePolicy::default()
        };
        raised(&live_run_samples(&detector, scorer, &robocall, 320, policy).0)
    };
    let immediate = at(0.0, &mut scorer);
    assert_eq!(immediate.len(), 1, "{immediate:?}");
    for hold in [0.5, 1.0, 2.0] {
        let held = at(hold, &mut scorer);
        assert_eq!(held.len(), 1, "hold {hold}: {held:?}");
        // Alert times are rounded to 1 ms.
        assert!(
            held[0] >= immediate[0] + hold - 1e-3,
            "hold {hold}: raised at {} s, the score first crossed at {} s",
            held[0],
            immediate[0]
        );
    }
    // A hold longer than the recording: the score never stays up long enough.
    let duration_s = robocall.2.len() as f64 / f64::from(robocall.0);
    assert!(at(duration_s, &mut scorer).is_empty());
}

#[test]
fn an_alert_needs_the_score_to_reach_the_threshold_plus_the_margin() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let threshold = 0.85;
    let detector = Detector::new(model.manifest.clone())
        .unwrap()
        .with_threshold(threshold)
        .unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let robocall = samples(&sample("synthetic_robocall.wav"));
    let alerts = |margin: f64, scorer: &mut OnnxScorer| {
        let policy = LivePolicy {
            raise_margin: margin,
            ..LivePolicy::default()
        };
        let events = live_run_samples(&detector, scorer, &robocall, 320, policy).0;
        raised_alerts(&events).cloned().collect::<Vec<_>>()
    };
    let at_threshold = alerts(0.0, &mut scorer);
    assert_eq!(at_threshold.len(), 1, "{at_threshold:?}");
    for margin in [0.02, 0.1] {
        let with_margin = alerts(margin, &mut scorer);
        assert_eq!(with_margin.len(), 1, "margin {margin}: {with_margin:?}");
        let alert = &with_margin[0];
        // The event says which level was crossed; it and the score are rounded to 4 decimals.
        assert!(
            (alert.level - (threshold + margin)).abs() <= 5e-5,
            "margin {margin}: {alert:?}"
        );
        assert!(
            (alert.threshold - threshold).abs() <= 5e-5,
            "margin {margin}: {alert:?}"
        );
        assert!(alert.score >= alert.level - 5e-5, "margin {margin}: {alert:?}");
        assert!(
            alert.time_s >= at_threshold[0].time_s,
            "margin {margin}: raised at {} s, before {at_threshold:?}",
            alert.time_s
        );
    }
    // A level of 1 cannot be reached by a probability below 1.
    assert!(alerts(1.0 - threshold, &mut scorer).is_empty());
}

#[test]
fn an_alert_margin_outside_0_to_1_is_a_config_error() {
    for margin in [-0.01, 1.0, f64::NAN] {
        let policy = LivePolicy {
            raise_margin: margin,
            ..LivePolicy::default()
        };
        assert_config_error(policy, &format!("margin {margin}"));
    }
}

#[test]
fn a_negative_or_non_finite_hold_is_a_config_error() {
    for hold in [-0.5, f64::NAN, f64::INFINITY] {
        let policy = LivePolicy {
            raise_hold_s: hold,
            ..LivePolicy::default()
        };
        assert_config_error(policy, &format!("hold {hold}"));
    }
}

/// What a scoring worker does under load: two streams fed packet by packet, their waiting
/// windows scored together in one model call per round. Events and analyses must be those of
/// each stream pushed on its own.
#[test]
fn streams_scored_together_in_shared_model_calls_report_what_they_report_alone() {
    use synthscan::WindowScorer;
    use synthscan::detect::Step;
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let inputs = [
        samples(&sample("synthetic_robocall.wav")),
        samples(&sample("genuine_jfk.wav")),
    ];
    let alone: Vec<_> = inputs
        .iter()
        .map(|s| live_run_samples(&detector, &mut scorer, s, 320, LivePolicy::default()))
        .collect();
    let mut lives: Vec<LiveStream> = inputs
        .iter()
        .map(|(rate, ch, _)| LiveStream::new(&detector, *rate, *ch, LivePolicy::default()).unwrap())
        .collect();
    let mut events = [Vec::new(), Vec::new()];
    let longest = inputs.iter().map(|s| s.2.len()).max().unwrap();
    let mut shared_calls = 0;
    for start in (0..longest).step_by(320) {
        for (live, (_, _, all)) in lives.iter_mut().zip(&inputs) {
            if start < all.len() {
                live.feed(&all[start..(start + 320).min(all.len())]).unwrap();
            }
        }
        loop {
            let mut needing = Vec::new();
            for (i, live) in lives.iter_mut().enumerate() {
                if live.advance(&mut events[i]).unwrap() == Step::NeedScores {
                    needing.push(i);
                }
            }
            if needing.is_empty() {
                break;
            }
            let mut batch = Vec::new();
            let mut counts = Vec::new();
            for &i in &needing {
                let (features, n) = lives[i].pending();
                batch.extend_from_slice(features);
                counts.push(n);
            }
            let mut logits = Vec::new();
            scorer.score_batch(&batch, counts.iter().sum(), &mut logits).unwrap();
            shared_calls += usize::from(needing.len() > 1);
            let mut at = 0;
            for (&i, &n) in needing.iter().zip(&counts) {
                lives[i].apply_scores(&logits[at..at + n]).unwrap();
                at += n;
            }
        }
    }
    assert!(
        shared_calls > 10,
        "the two streams rarely shared a call ({shared_calls})"
    );
    for (i, live) in lives.iter_mut().enumerate() {
        let analysis = live.finish(&mut scorer, &mut events[i]).unwrap();
        let (alone_events, alone_analysis) = &alone[i];
        assert_eq!(analysis.verdict, alone_analysis.verdict);
        // batch 1 against a shared batch inside ONNX Runtime: logits agree to ~1e-6
        assert!((analysis.score.unwrap() - alone_analysis.score.unwrap()).abs() < 1e-4);
        assert_eq!(events[i].len(), alone_events.len(), "stream {i}");
        let times = |ev: &[LiveEvent]| -> Vec<f64> {
            ev.iter()
                .map(|e| match e {
                    LiveEvent::Update(u) => u.time_s,
                    LiveEvent::Alert(a) => -a.time_s,
                })
                .collect()
        };
        assert_eq!(times(&events[i]), times(alone_events), "stream {i}");
    }
}
