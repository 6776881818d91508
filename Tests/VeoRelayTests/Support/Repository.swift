import Foundation

/// The repository the tests were built from (its docs, its protocol model).
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)   // Tests/VeoRelayTests/Support/Repository.swift
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
