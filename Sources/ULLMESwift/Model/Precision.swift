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
    /// Opt-in integer mode: the linear layers whose GGUF weights are integer blocks (Q4_0 ... Q8_0, Q4_K ...
    /// Q6_K) multiply those integers with the activations quantised to int8 per row and group of 32 (as
    /// llama.cpp's Q8 activations), int32 sums (VPDPBUSD on AVX512-VNNI / AVX-VNNI, VPMADDUBSW on AVX2), float32
    /// scales (cullme_gemm_i8.h); the activations' outliers (above 3 x their row's rms, 1-2 % of the entries)
    /// skip the int8 rounding and are multiplied in float32. As in bf16 mode, Q/K/V and the first fifth of the
    /// layers stay exact. Every path gives the same bits; other weights (f16, f32, safetensors) run the exact
    /// kernels, and `path` says when none could use integers.
    case int8

    /// The precision a load gets when none is asked for: ULLME_PRECISION=exact|bf16|int8, else exact.
    public static var defaultPrecision: Precision {
        environmentChoice("ULLME_PRECISION", default: .exact, expected: "exact, bf16 or int8")
    }

    /// Whether a model asking for this precision with this storage gets bfloat16 weights on this CPU.
    func usesBF16(storage: WeightStorage) -> Bool {
        self == .bf16 && storage != .stored && cullme_gemm_bf16_available() != 0
    }

    /// Whether layer `layer` of `layers` may take bfloat16 or int8 weights (its attention output and MLP): not
    /// the first fifth, whose rounding errors pass through every later layer. Q/K/V never do (DecoderWeights).
    /// SmolLM2 parity texts, bf16: sum of 1 - cosine 0.00165 with no layer exact, 0.00024 with 6 of 30; int8,
    /// min cosine to transformers (causal / bidirectional), before the outlier split: every linear layer 0.9980 /
    /// 0.9949, without Q/K/V 0.9996 / 0.9951, without the first fifth 0.9995 / 0.9968, without both 0.9998 /
    /// 0.9985-0.9993 (the last digits moved with OpenBLAS's attention kernels); with it 0.9999 / 0.9998.
    static func layerTakesReducedPrecision(_ layer: Int, of layers: Int) -> Bool { layer >= (layers + 4) / 5 }

    /// Which products a model loaded with this precision and storage runs: "exact", "avx512_bf16", or
    /// "exact fallback: ..." with the reason.
    func path(storage: WeightStorage) -> String {
        if self == .int8 { return String(cString: cullme_gemm_i8_path()) }
        guard self == .bf16 else { return "exact" }
        guard storage != .stored else { return "exact fallback: stored weights run the float32 kernels" }
        return String(cString: cullme_gemm_bf16_path())
    }
}
