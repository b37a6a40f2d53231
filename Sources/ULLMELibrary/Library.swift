// libullme.so is the engine (ULLMESwift, whose CAPI/ exports the C ABI) linked as one dynamic library.
// This target holds no code: it exists so that Package.swift can give the library product, and only it,
// the link flags of a self-contained binary (see `staticSwiftRuntime` there).
