// Counter-based random numbers for training (dropout masks, initialisation).
//
// Every value is a pure function of a key and a counter, so a mask never depends on the order in
// which examples are processed, on how a batch is chunked (GradCache) or split across workers, or on
// which pass (the no-grad pass or the grad pass of GradCache) asks for it.
//
// Key (docs/method.md §2): (seed, step, example, layer, site)
//   seed     the run's seed
//   step     the optimiser step (0-based)
//   example  the example's index in the global batch (its position in the data order, not in a chunk)
//   layer    the decoder layer index
//   site     which random site inside the layer: see `RandomSite` (module id × pass kind), so the
//            encode and generate passes of the same example draw independent masks
// Counter: the element index inside that site, e.g. token × inFeatures + feature for a LoRA input
// (token = position inside the example, independent of padding).
//
// Generator: SplitMix64's finaliser (Steele, Lea, Flood 2014) used as a hash. The key fields are
// absorbed one at a time, key = mix(mix(mix(mix(mix(seed) ^ step) ^ example) ^ layer<<32|site)),
// and value(counter) = mix(key ^ mix(counter + γ)) with γ the SplitMix64 increment.

/// SplitMix64's output function: a bijective 64-bit mixer.
@inline(__always)
func splitMix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Which random site a stream belongs to: a module id inside a layer and the kind of forward pass.
public struct RandomSite: Sendable, Hashable {
    public var module: UInt32
    public var pass: UInt32
    public init(module: UInt32, pass: UInt32 = 0) { self.module = module; self.pass = pass }
    var packed: UInt32 { module &* 16 &+ (pass & 15) }
}

/// A keyed counter-based random stream. `uniform(i)` is a pure function of (key, i).
public struct KeyedRandom: Sendable, Hashable {
    public let key: UInt64

    /// The stream for (seed, step, example, layer, site); see the file header for the layout.
    public init(seed: UInt64, step: UInt64, example: UInt64, layer: UInt32, site: RandomSite) {
        var h = splitMix64(seed)
        h = splitMix64(h ^ step)
        h = splitMix64(h ^ example)
        h = splitMix64(h ^ (UInt64(layer) << 32 | UInt64(site.packed)))
        key = h
    }

    /// A stream from a raw 64-bit key (e.g. parameter initialisation: key = hash of seed and name).
    public init(rawKey: UInt64) { key = splitMix64(rawKey) }

    /// 64 random bits for counter `i`.
    @inline(__always)
    public func bits(_ i: UInt64) -> UInt64 { splitMix64(key ^ splitMix64(i &+ 0x9E37_79B9_7F4A_7C15)) }

    /// A uniform float in [0, 1) with 24 random bits.
    @inline(__always)
    public func uniform(_ i: UInt64) -> Float { Float(bits(i) >> 40) * 0x1p-24 }
}
