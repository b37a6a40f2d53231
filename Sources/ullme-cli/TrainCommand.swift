import Glibc
import ULLMESwift

/// `ullme train CONFIG.yaml [--resume] [--quiet]`: GRL fine-tuning from a YAML config, with a progress bar
/// (losses, rate, ETA) on stderr, a JSONL log and, at the end, a PNG loss curve and the PEFT adapter.
func runTrain(_ args: Arguments) throws {
    guard let path = args.positional.first else { throw CLIError(message: "train needs a config file: ullme train CONFIG.yaml") }
    let config = try TrainConfig.load(path: path)
    for w in config.warnings { fputs("ullme: config warning: \(w)\n", stderr) }
    var settings = try GRLRunSettings(config: config)
    if settings.modelPath == DefaultModel.path, !DefaultModel.isPresent { try fetchDefaultModel() }
    if let threads = args.value("--threads"), let n = Int(threads), n >= 1 { settings.threads = n }  // over the YAML's
    let trainer = try GRLTrainer(settings: settings)
    // Under mpirun (data-parallel, Train/DataParallel.swift) every rank runs this; rank 0 alone talks and writes.
    let writer = trainer.isWriter
    if writer { for line in trainer.skippedLines { fputs("ullme: skipped \(line)\n", stderr) } }
    if args.flags.contains("--resume") {
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
              + "(\(trainer.sampler.stepsPerEpoch) per epoch\(ranks)), log \(logPath)\n", stderr)
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
    fputs("ullme: adapter written to \(settings.outputDir)/adapter\n", stderr)
    // The loss curve: matplotlib when Python has it (the plot is a convenience, the JSONL log is the record).
    let plot = "python3 scripts/plot_losses.py '\(logPath)' '\(settings.outputDir)/losses.png' 2>/dev/null"
    if system(plot) == 0 { fputs("ullme: loss curve \(settings.outputDir)/losses.png\n", stderr) }
}
