import Glibc
import ULLMESwift

/// `ullme train CONFIG.yaml [--resume | --overwrite] [--quiet]`: GRL fine-tuning from a YAML config, with a
/// progress bar (losses, rate, ETA) on stderr, a JSONL log and, at the end, a PNG loss curve and the PEFT adapter.
/// An earlier run in output_dir is continued (--resume), replaced (--overwrite) or, by default, left alone.
func runTrain(_ args: Arguments) throws {
    if args.flags.contains("--keys") { print(TrainConfig.keyTable, terminator: ""); return }
    guard let path = args.positional.first else { throw CLIError(message: "train needs a config file: ullme train CONFIG.yaml") }
    let resume = args.flags.contains("--resume"), overwrite = args.flags.contains("--overwrite")
    guard !(resume && overwrite) else { throw CLIError(message: "--resume and --overwrite exclude each other") }
    var config = try TrainConfig.load(path: path)
    for w in config.warnings { fputs("ullme: config warning: \(w)\n", stderr) }
    if let n = try args.threads() { config.threads = n }  // over the YAML's
    let existing = config.existingRunFiles
    if !resume && !overwrite && !existing.isEmpty {
        throw CLIError(message: "\(config.outputDir) already holds a run (\(existing.map { $0.split(separator: "/").last.map(String.init) ?? $0 }.joined(separator: ", "))): "
                       + "pass --resume to continue it, --overwrite to start afresh, or set another output_dir")
    }
    if config.modelPath == DefaultModel.path, !DefaultModel.isPresent { try fetchDefaultModel() }
    let trainer = try GRLTrainer(config: config)
    // Under mpirun (data-parallel, Train/DataParallel.swift) every rank runs this; rank 0 alone talks and writes.
    let writer = trainer.isWriter
    if overwrite && writer {
        for p in existing + [config.lossPlotPath] { try removeTree(p) }
    }
    if writer { for line in trainer.skippedLines { fputs("ullme: skipped \(line)\n", stderr) } }
    if resume {
        let step = try trainer.resumeIfPossible()
        if writer { fputs("ullme: resuming at step \(step) of \(trainer.totalSteps)\n", stderr) }
    }
    let logPath = trainer.logPath
    let quiet = args.flags.contains("--quiet") || !writer
    let start = ProgressBar.now()
    let firstStep = trainer.session.step
    let ranks = trainer.world.map { ", data-parallel over \($0.size) MPI ranks" } ?? ""
    if writer {
        fputs("ullme: training \(trainer.session.parameterCount) parameters for \(trainer.totalSteps) steps "
              + "(\(trainer.sampler.stepsPerEpoch) per epoch\(ranks)), base products \(trainer.session.model.basePrecisionPath), "
              + "log \(logPath)\n", stderr)
    }
    try trainer.run { r in
        if let report = r.nonFiniteDescription {
            // Always reported, also with --quiet (a newline first: the progress bar has no newline).
            fputs("\(quiet ? "" : "\n")ullme: \(report)\n", stderr)
        }
        if !quiet {
            let elapsed = ProgressBar.now() - start
            let done = r.step - firstStep
            let eta = done > 0 ? elapsed / Double(done) * Double(r.totalSteps - r.step) : 0
            let f = { (x: Float) in String(Double((x * 1000).rounded()) / 1000) }
            fputs("\rstep \(r.step)/\(r.totalSteps) loss \(f(r.losses.total)) (cl \(f(r.losses.contrastive)) gen \(f(r.losses.generative)) "
                  + "kl \(f(r.losses.kl))) lr \(r.learningRate) \(Int(r.tokensPerSecond)) tok/s ETA \(Int(eta))s   ", stderr)
            if r.step == r.totalSteps { fputs("\n", stderr) }
        }
        return true
    }
    guard writer else { return }
    fputs("ullme: adapter written to \(config.adapterDir)\n", stderr)
    // The loss curve: matplotlib when Python has it (the plot is a convenience, the JSONL log is the record).
    if runProcess(["python3", "-c", plotLossesProgram, logPath, config.lossPlotPath]) == 0 {
        fputs("ullme: loss curve \(config.lossPlotPath)\n", stderr)
    } else {
        fputs("ullme: no \(config.lossPlotPath): drawing it needs python3 with matplotlib (pip install matplotlib)\n", stderr)
    }
}

/// Draws a GRL log (JSON lines, argv[1]) into a PNG (argv[2]): total, contrastive, generative, KL. Carried in
/// the binary, so the plot does not depend on the working directory.
let plotLossesProgram = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
steps = [r["step"] for r in rows]
fig, ax = plt.subplots(figsize=(8, 4.5))
for key, label in (("loss", "total"), ("cl", "contrastive"), ("gen", "generative"), ("kl", "KL")):
    # null: a non-finite value (a step that nonfinite_policy skipped or stopped at): a gap in the line
    ax.plot(steps, [float("nan") if r[key] is None else r[key] for r in rows], label=label)
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
"""

/// Runs argv (found on PATH) with stdout and stderr discarded; returns its exit status (-1: not started).
func runProcess(_ argv: [String]) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var cargs = argv.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    var pid: pid_t = 0
    guard posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
}
