import CULLME
import Glibc

/// The arithmetic of a model's linear layers at inference (attention, norms, softmax and LoRA adapters
/// always run in float32).
public enum Precision: String, Sendable {
    /// float32 weights and one FMA chain per output element: the results the parity tests check (default).
    case exact
    /// Opt-in fast mode: the attention output, MLP and LM-head weights rounded to bfloat16 and packed at
    /// load, their products by AVX512_BF16's VDPBF16PS (twice the FP32 FMA rate) with float32 sums, inputs
    /// rounded to bfloat16 as they enter; Q/K/V (the softmax amplifies their errors) and the first fifth of
    /// the layers (every later layer amplifies theirs) stay float32. Where
    /// the CPU lacks AVX512_BF16, and for stored weights, the model runs the exact kernels and `path` says so.
    case bf16

    /// The precision a load gets when none is asked for: ULLME_PRECISION=exact|bf16, else exact.
    public static var defaultPrecision: Precision {
        environmentChoice("ULLME_PRECISION", default: .exact, expected: "exact or bf16")
    }

    /// Whether a model asking for this precision with this storage gets bfloat16 weights on this CPU.
    func usesBF16(storage: WeightStorage) -> Bool {
        self == .bf16 && storage != .stored && cullme_gemm_bf16_available() != 0
    }

    /// Whether layer `layer` of `layers` may take bfloat16 weights in bf16 mode (its attention output and
    /// MLP): not the first fifth, whose rounding errors pass through every later layer (SmolLM2 parity texts:
    /// sum of 1 - cosine 0.00165 with none exact, 0.00024 with 6 of 30). Q/K/V never do (DecoderWeights).
    static func layerTakesBF16(_ layer: Int, of layers: Int) -> Bool { layer >= (layers + 4) / 5 }

    /// Which products a model loaded with this precision and storage runs: "exact", "avx512_bf16", or
    /// "exact fallback: ..." with the reason.
    func path(storage: WeightStorage) -> String {
        guard self == .bf16 else { return "exact" }
        guard storage != .stored else { return "exact fallback: stored weights run the float32 kernels" }
        return String(cString: cullme_gemm_bf16_path())
    }
}
