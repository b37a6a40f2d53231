import XCTest
@testable import ULLMESwift

final class FormatsTests: XCTestCase {
}
