//! Crash safety of `natgrad train`: a run killed with SIGKILL at random moments — also while
//! it writes its checkpoint — and started again with the same command each time, ends with
//! the parameters of an uninterrupted run, bit for bit; no kill leaves a checkpoint that
//! cannot be read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use natgrad::optim::Checkpoint;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random-moment kills, at least the 20 the reliability promise names.
const RANDOM_KILLS: usize = 24;
/// Kills aimed at checkpoint writes (the moment the temporary file appears).
const AIMED_KILLS: usize = 12;

fn start(dir: &Path, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_natgrad"))
        .args(["train", "--model", "autoencoder:784,16", "--train-size", "200", "--method", "ngd"])
        .args(["--batch", "50", "--metric-batch", "50", "--solver-iterations", "5", "--seed", "3"])
        .args(["--iterations", "300", "--checkpoint-every", "1"])
        .arg("--checkpoint")
        .arg(dir.join(format!("{name}.ckpt")))
        .arg("--out")
        .arg(dir.join(format!("{name}.npy")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("natgrad starts")
}

fn finish(child: Child) {
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "natgrad train failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// SIGKILLs `child` unless it has already exited; returns whether the kill landed.
fn kill(child: &mut Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok();
    child.wait().unwrap();
    running
}

/// Whatever a kill left behind must be a readable checkpoint (or nothing yet).
fn assert_readable(checkpoint: &Path) {
    if checkpoint.exists()
        && let Err(e) = Checkpoint::read(checkpoint)
    {
        panic!("a killed run left an unreadable checkpoint: {e}");
    }
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_parameters_bit_for_bit() {
    let dir: PathBuf = std::env::temp_dir().join(format!("natgrad-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let began = Instant::now();
    finish(start(&dir, "straight"));
    let whole_run = began.elapsed();

    let checkpoint = dir.join("killed.ckpt");
    let temporary = dir.join("killed.tmp");
    let mut rng = StdRng::seed_from_u64(11);
    // Delays up to 5% of the uninterrupted run; when a run finishes before its kill (a loaded
    // machine runs slower, then faster), the sequence starts over with shorter delays.
    let mut longest = whole_run.mul_f64(0.05);
    let mut random_kills = 0;
    for _ in 0..20 * RANDOM_KILLS {
        if random_kills == RANDOM_KILLS {
            break;
        }
        let mut child = start(&dir, "killed");
        std::thread::sleep(longest.mul_f64(rng.random_range(0.0..1.0)));
        if kill(&mut child) {
            random_kills += 1;
        } else {
            std::fs::remove_file(&checkpoint).unwrap();
            longest /= 2;
        }
        assert_readable(&checkpoint);
    }
    let mut mid_write = 0;
    for _ in 0..AIMED_KILLS {
        std::fs::remove_file(&temporary).ok();
        let mut child = start(&dir, "killed");
        let deadline = Instant::now() + whole_run * 2;
        while !temporary.exists() && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::hint::spin_loop();
        }
        kill(&mut child);
        mid_write += usize::from(temporary.exists());
        assert_readable(&checkpoint);
    }
    finish(start(&dir, "killed"));

    assert_eq!(random_kills, RANDOM_KILLS, "kills that found the run still running");
    assert!(mid_write >= 1, "no kill landed during a checkpoint write ({AIMED_KILLS} tried)");
    let straight = std::fs::read(dir.join("straight.npy")).unwrap();
    let killed = std::fs::read(dir.join("killed.npy")).unwrap();
    assert_eq!(straight.len(), killed.len());
    assert!(straight == killed, "the resumed parameters differ from the uninterrupted run's");
    let end = Checkpoint::read(&checkpoint).unwrap();
    assert_eq!(end.iteration, 300);
    eprintln!(
        "{random_kills} random kills, {mid_write} during checkpoint writes, uninterrupted run {whole_run:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
