import XCTest

// XCTest's assertions take synchronous autoclosures; these take async ones, so a test can write
// `await XCTAssertEqualAsync(try await backend.get("k")?.value, [1])`.

public func XCTAssertEqualAsync<T: Equatable>(_ a: @autoclosure () async throws -> T, _ b: @autoclosure () async throws -> T,
                                              _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let (x, y) = (try await a(), try await b())
        XCTAssertEqual(x, y, message(), file: file, line: line)
    } catch { XCTFail("threw \(error) \(message())", file: file, line: line) }
}

public func XCTAssertNilAsync<T>(_ a: @autoclosure () async throws -> T?, _ message: @autoclosure () -> String = "",
                                 file: StaticString = #filePath, line: UInt = #line) async {
    do { let value = try await a(); XCTAssertNil(value, message(), file: file, line: line) } catch { XCTFail("threw \(error) \(message())", file: file, line: line) }
}

public func XCTAssertNotNilAsync<T>(_ a: @autoclosure () async throws -> T?, _ message: @autoclosure () -> String = "",
                                    file: StaticString = #filePath, line: UInt = #line) async {
    do { let value = try await a(); XCTAssertNotNil(value, message(), file: file, line: line) } catch { XCTFail("threw \(error) \(message())", file: file, line: line) }
}

public func XCTAssertTrueAsync(_ a: @autoclosure () async throws -> Bool, _ message: @autoclosure () -> String = "",
                               file: StaticString = #filePath, line: UInt = #line) async {
    do { let value = try await a(); XCTAssertTrue(value, message(), file: file, line: line) } catch { XCTFail("threw \(error) \(message())", file: file, line: line) }
}

public func XCTAssertFalseAsync(_ a: @autoclosure () async throws -> Bool, _ message: @autoclosure () -> String = "",
                                file: StaticString = #filePath, line: UInt = #line) async {
    do { let value = try await a(); XCTAssertFalse(value, message(), file: file, line: line) } catch { XCTFail("threw \(error) \(message())", file: file, line: line) }
}

public func XCTAssertGreaterThanAsync<T: Comparable>(_ a: @autoclosure () async throws -> T, _ b: @autoclosure () async throws -> T,
                                                     file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let (x, y) = (try await a(), try await b())
        XCTAssertGreaterThan(x, y, file: file, line: line)
    } catch { XCTFail("threw \(error)", file: file, line: line) }
}

public func XCTUnwrapAsync<T>(_ value: @autoclosure () async throws -> T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    let result = try await value()
    return try XCTUnwrap(result, file: file, line: line)
}

public func XCTAssertThrowsErrorAsync<T>(_ expression: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
                                         _ handler: (Error) -> Void = { _ in }) async {
    do {
        _ = try await expression()
        XCTFail("expected an error", file: file, line: line)
    } catch {
        handler(error)
    }
}

/// Waits up to `timeout` for `condition`, failing the test if it never holds.
public func waitUntil(timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line,
                      _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        guard Date() < deadline else { return XCTFail("condition not met within \(timeout) s", file: file, line: line) }
        try await Task.sleep(for: .milliseconds(50))
    }
}
