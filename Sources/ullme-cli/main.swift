// Placeholder so the package builds; the CLI (`ullme embed | train | eval | info`) lands in its own branch.
import ULLMESwift

print("ullme: not implemented yet")
