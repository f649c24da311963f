import Foundation
import TestSupport
@testable import WebAPI
import XCTest

/// The web terminal's component, joined from Debian's node-xterm modules at their Debian path.
final class XtermBundleTests: XCTestCase {
    func testTheDebianModulesJoinIntoOneScriptWithTheTerminalAndTheFitAddon() throws {
        guard FileManager.default.fileExists(atPath: XtermBundle.defaultDirectory) else {
            try TestEnvironment.missing("node-xterm (Debian package; scripts/install-deps.sh build installs it)")
        }
        let (script, stylesheet) = try XtermBundle.build()
        XCTAssertTrue(script.contains("define(\"public/Terminal.js\""), "the public entry point is in it")
        XCTAssertTrue(script.contains("define(\"addons/fit/fit.js\""), "the fit addon is in it")
        XCTAssertTrue(script.contains("window.Terminal = Terminal"))
        XCTAssertFalse(script.contains(".test.js\""), "no test module")
        XCTAssertFalse(script.contains("define(\"addons/attach"), "no addon the console does not use")
        XCTAssertFalse(script.contains("sourceMappingURL"), "no source map the console does not serve")
        XCTAssertTrue(stylesheet.contains(".xterm"), "xterm's own stylesheet")
    }

    func testAMissingComponentSaysWhichPackageToInstall() throws {
        let empty = try TestEnvironment.temporaryDirectory("xterm-missing")
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try XtermBundle.build(from: empty.path)) { error in
            XCTAssertTrue("\(error)".contains("node-xterm"), "\(error)")
        }
        XCTAssertThrowsError(try XtermBundle.build(from: empty.appendingPathComponent("absent").path)) { error in
            XCTAssertTrue("\(error)".contains("node-xterm"), "\(error)")
        }
    }
}
