import CULLME
import Glibc

/// Rotary position embedding scaling, as Hugging Face's rope_parameters / rope_scaling describe it.
public enum RopeScaling: Equatable, Sendable {
    case none
    case linear(factor: Float)
    case llama3(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositions: Int)
    /// Phi-3 longrope: per-frequency divisors, long ones for sequences longer than `originalMaxPositions`;
    /// cos and sin are multiplied by `attentionFactor` in both modes.
    case longrope(short: [Float], long: [Float], originalMaxPositions: Int, attentionFactor: Float)
}

/// The inverse frequencies of one rotary embedding, computed once at load in float32 as transformers does
/// (so angles match it bit for bit at small positions).
struct RotaryEmbedding: Sendable {
    let rotaryDim: Int          // dims rotated per head (== head_dim unless partial rotary)
    let invFreq: [Float]        // rotaryDim / 2 entries
    let invFreqLong: [Float]?   // longrope: used when a sequence is longer than `longThreshold`
    let longThreshold: Int
    let attentionFactor: Float

    init(rotaryDim: Int, theta: Float, scaling: RopeScaling, freqFactors: [Float]? = nil) {
        self.rotaryDim = rotaryDim
        let half = rotaryDim / 2
        let base = (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(rotaryDim)) }
        var inv = base
        var long: [Float]? = nil
        var threshold = Int.max
        var attention: Float = 1
        switch scaling {
        case .none: break
        case .linear(let factor):
            inv = base.map { $0 / factor }
        case let .llama3(factor, low, high, original):
            let lowWavelen = Float(original) / low, highWavelen = Float(original) / high
            inv = base.map { f in
                let wavelen = 2 * Float.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / factor }
                let smooth = (Float(original) / wavelen - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        case let .longrope(short, longFactors, original, factor):
            // transformers: inv_freq = 1 / (ext * base^(2i/d)), computed as 1/(ext * theta^(..)).
            inv = (0..<half).map { i in 1 / (short[i] * powf(theta, Float(2 * i) / Float(rotaryDim))) }
            long = (0..<half).map { i in 1 / (longFactors[i] * powf(theta, Float(2 * i) / Float(rotaryDim))) }
            threshold = original
            attention = factor
        }
        // llama.cpp stores llama-3 scaling as a per-frequency divisor tensor (rope_freqs.weight).
        if let freqFactors, freqFactors.count == half {
            inv = zip(inv, freqFactors).map { $0 / $1 }
        }
        invFreq = inv
        invFreqLong = long
        longThreshold = threshold
        attentionFactor = attention
    }

    /// cos/sin tables [T, rotaryDim/2] for packed sequences of the given lengths (positions restart at 0
    /// for each sequence; longrope picks its factors by each sequence's own length).
    func tables(lengths: [Int]) -> (cos: [Float], sin: [Float]) {
        let half = rotaryDim / 2
        let total = lengths.reduce(0, +)
        var c = [Float](repeating: 0, count: total * half)
        var s = c
        var t = 0
        for L in lengths {
            let freqs = (L > longThreshold ? invFreqLong : nil) ?? invFreq
            for p in 0..<L {
                for i in 0..<half {
                    let angle = Float(p) * freqs[i]
                    c[t * half + i] = cosf(angle) * attentionFactor
                    s[t * half + i] = sinf(angle) * attentionFactor
                }
                t += 1
            }
        }
        return (c, s)
    }
}

/// Rotates the first `rotaryDim` dims of every head of x[T, rowStride] in place (rotate-half convention
/// of transformers: pairs (i, i + rotaryDim/2)); the remaining head dims pass through.
func ropeForward(_ x: UnsafeMutablePointer<Float>, rowStride: Int, T: Int, nHeads: Int, headDim: Int,
                 rotaryDim: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
    let half = rotaryDim / 2
    for t in 0..<T {
        let c = cos + t * half, s = sin + t * half
        for h in 0..<nHeads {
            let v = x + t * rowStride + h * headDim
            for i in 0..<half {
                let x1 = v[i], x2 = v[i + half]
                v[i] = x1 * c[i] - x2 * s[i]
                v[i + half] = x2 * c[i] + x1 * s[i]
            }
        }
    }
}
