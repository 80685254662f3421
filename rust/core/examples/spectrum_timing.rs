//! Rough per-stage timing of one reference frame (run with --release); min of batches.
use isthmus_core::spectrum::*;
use std::hint::black_box;
use std::time::Instant;

fn min_us(mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..100 {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / 100.0 * 1e6);
    }
    best
}

fn main() {
    let n = 4096;
    let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5).collect();
    let w = Window::periodic(WindowKind::Hann, n);
    let mut fft = PlannedRealFft::new(n);
    println!("sum sq {:.2}", min_us(|| {
        black_box(black_box(&x).iter().map(|v| v * v).sum::<f64>());
    }));
    println!("stats+window {:.2}", min_us(|| {
        let m = finite_mean(&x).unwrap();
        black_box(frame_stats_and_window(&x, m, Detrend::Mean, w.coefficients(), fft.input_mut()));
    }));
    println!("fft f64 {:.2}", min_us(|| {
        black_box(fft.forward(&x)[3]);
    }));
    let mut planner = realfft::RealFftPlanner::<f32>::new();
    let plan = planner.plan_fft_forward(n);
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let mut inp = plan.make_input_vec();
    let mut out = plan.make_output_vec();
    let mut scr = plan.make_scratch_vec();
    println!("fft f32 {:.2}", min_us(|| {
        inp.copy_from_slice(&xf);
        plan.process_with_scratch(&mut inp, &mut out, &mut scr).unwrap();
        black_box(out[3]);
    }));
    let power: Vec<f64> = fft.forward(&x).iter().map(|c| c.norm_sqr()).collect();
    let kernel = WindowKernel::new(&w);
    let mut peaks = Vec::new();
    println!("peaks {:.2}", min_us(|| {
        top_local_maxima(&power, 5, &mut peaks);
        for &b in &peaks {
            black_box(refine_peak(&power, b, &kernel, w.sum()));
        }
    }));
    println!("bands8 {:.2}", min_us(|| {
        for i in 0..8 {
            black_box(one_sided_power_sum(&power, i * 256..(i + 1) * 256, n));
        }
    }));
    println!("centroid {:.2}", min_us(|| {
        let mut p2 = power.clone(); let spec = fft.forward(&x).to_vec(); black_box(power_spectrum(&spec, &mut p2, n));
    }));
    if std::env::args().len() > 1 {
        let cfg = AnalyzerConfig::new(25600.0);
        let mut a = SpectrumAnalyzer::new(cfg).unwrap();
        let xs64: Vec<f64> = (0..2048 * 8).map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5).collect();
        let t = Instant::now();
        for _ in 0..3000 {
            let mut batch = a.empty_batch();
            a.feed(&xs64, xs64.len(), &mut batch).unwrap();
        }
        println!("only analyzer {:.2} us/frame", t.elapsed().as_secs_f64() / a.frames() as f64 * 1e6);
        return;
    }
    let mut cfg = AnalyzerConfig::new(25600.0);
    cfg.bands = (0..8).map(|i| (i as f64 * 1000.0, (i + 1) as f64 * 1000.0)).collect();
    let mut a = SpectrumAnalyzer::new(cfg).unwrap();
    let xs: Vec<f32> = (0..2048 * 8).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let mut batch = a.empty_batch();
    let mut i = 0;
    let per = min_us(|| {
        batch.start_index.clear();
        let c = &xs[i * 2048..(i + 1) * 2048];
        a.feed(c, 2048, &mut batch).unwrap();
        i = (i + 1) % 8;
    });
    println!("analyzer per frame {:.2}", per);
    let xs64: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
    let per_8 = min_us(|| {
        batch = a.empty_batch();
        a.feed(&xs64, xs.len(), &mut batch).unwrap();
    });
    println!("analyzer f64 per frame {:.2}", per_8 / 8.0);
    let mut cfg = AnalyzerConfig::new(25600.0);
    cfg.peaks = 0;
    let mut a = SpectrumAnalyzer::new(cfg).unwrap();
    let per_8 = min_us(|| {
        batch = a.empty_batch();
        a.feed(&xs64, xs.len(), &mut batch).unwrap();
    });
    println!("analyzer no peaks/bands per frame {:.2}", per_8 / 8.0);
}
