import CULLME
import Glibc

/// Rotary position embedding scaling, as Hugging Face's rope_parameters / rope_scaling describe it.
public enum RopeScaling: Equatable, Sendable {
    case none
    case linear(factor: Float)
    case llama3(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositions: Int)
}

/// The inverse frequencies of one model's rotary embedding, computed once at load in float32 as
/// transformers does (so angles match it bit for bit at small positions).
struct RotaryEmbedding: Sendable {
    let rotaryDim: Int          // dims rotated per head (== head_dim unless partial rotary)
    let invFreq: [Float]        // rotaryDim / 2 entries

    init(rotaryDim: Int, theta: Float, scaling: RopeScaling, freqFactors: [Float]? = nil) {
        self.rotaryDim = rotaryDim
        let half = rotaryDim / 2
        var inv = (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(rotaryDim)) }
        switch scaling {
        case .none: break
        case .linear(let factor):
            inv = inv.map { $0 / factor }
        case let .llama3(factor, low, high, original):
            let lowWavelen = Float(original) / low, highWavelen = Float(original) / high
            inv = inv.map { f in
                let wavelen = 2 * Float.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / factor }
                let smooth = (Float(original) / wavelen - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        // llama.cpp stores llama-3 scaling as a per-frequency divisor tensor (rope_freqs.weight).
        if let freqFactors, freqFactors.count == half {
            inv = zip(inv, freqFactors).map { $0 / $1 }
        }
        invFreq = inv
    }

    /// cos/sin tables [T, rotaryDim/2] for the given positions.
    func tables(positions: [Int32]) -> (cos: [Float], sin: [Float]) {
        let half = rotaryDim / 2
        var c = [Float](repeating: 0, count: positions.count * half)
        var s = c
        for (t, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                c[t * half + i] = cosf(angle)
                s[t * half + i] = sinf(angle)
            }
        }
        return (c, s)
    }
}

/// Rotates x[T, nHeads * headDim] in place (rotate-half convention of transformers: pairs (i, i + half)).
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
