import Foundation
import Testing
@testable import KeepsakeS3

/// AWS's published SigV4 examples: the signature test suite (service "service",
/// 2015-08-30T12:36:00Z) and the signed requests of the S3 API reference
/// ("Signature Calculations for the Authorization Header", 2013-05-24, bucket
/// "examplebucket"). Each expected value is copied from those documents.
struct SigV4Tests {
    static let suiteSigner = SigV4Signer(
        credentials: try! S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Array("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".utf8)),
        region: "us-east-1", service: "service")
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
    static let s3Signer = SigV4Signer(
        credentials: try! S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: Array("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".utf8)),
        region: "us-east-1")
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    static func authorization(_ headers: [(name: String, value: String)]) -> String {
        headers.first { $0.name == "authorization" }?.value ?? ""
    }

    static func signature(_ headers: [(name: String, value: String)]) -> String {
        String(authorization(headers).split(separator: "=").last ?? "")
    }

    @Test func getVanillaFromTheTestSuite() throws {
        let headers = try Self.suiteSigner.sign(
            .init(method: "GET", host: "example.amazonaws.com", path: "/", payloadHash: SigV4Signer.emptyPayloadHash), at: Self.suiteDate)
        #expect(Self.authorization(headers) == """
            AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
            SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31
            """)
        #expect(headers.contains { $0 == (name: "x-amz-date", value: "20150830T123600Z") })
        #expect(!headers.contains { $0.name == "x-amz-content-sha256" })
    }

    @Test func theTestSuiteSortsQueryParametersAndSignsPosts() throws {
        let query = try Self.suiteSigner.sign(
            .init(method: "GET", host: "example.amazonaws.com", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
                  payloadHash: SigV4Signer.emptyPayloadHash), at: Self.suiteDate)
        #expect(Self.signature(query) == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        let post = try Self.suiteSigner.sign(
            .init(method: "POST", host: "example.amazonaws.com", path: "/", payloadHash: SigV4Signer.emptyPayloadHash), at: Self.suiteDate)
        #expect(Self.signature(post) == "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
    }

    @Test func s3GetObjectWithARange() throws {
        let headers = try Self.s3Signer.sign(
            .init(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", headers: [("Range", "bytes=0-9")],
                  payloadHash: SigV4Signer.emptyPayloadHash), at: Self.s3Date)
        #expect(Self.authorization(headers) == """
            AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
            SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
            Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41
            """)
    }

    @Test func s3PutObjectEncodesTheKeyAndSignsTheBody() throws {
        let headers = try Self.s3Signer.sign(
            .init(method: "PUT", host: "examplebucket.s3.amazonaws.com", path: "/test$file.text",
                  headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                  payloadHash: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"), at: Self.s3Date)
        #expect(Self.authorization(headers).contains("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"))
        #expect(Self.signature(headers) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func s3BucketRequestsWithQueries() throws {
        let lifecycle = try Self.s3Signer.sign(
            .init(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/", query: [("lifecycle", "")],
                  payloadHash: SigV4Signer.emptyPayloadHash), at: Self.s3Date)
        #expect(Self.signature(lifecycle) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        let list = try Self.s3Signer.sign(
            .init(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/", query: [("prefix", "J"), ("max-keys", "2")],
                  payloadHash: SigV4Signer.emptyPayloadHash), at: Self.s3Date)
        #expect(Self.signature(list) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func aSessionTokenIsSentAndSigned() throws {
        let signer = SigV4Signer(
            credentials: try S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Array("secret".utf8), sessionToken: "token"),
            region: "us-east-1")
        let headers = try signer.sign(.init(method: "GET", host: "h", path: "/", payloadHash: SigV4Signer.emptyPayloadHash), at: Self.s3Date)
        #expect(headers.contains { $0 == (name: "x-amz-security-token", value: "token") })
        #expect(Self.authorization(headers).contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
    }

    @Test func encodingKeepsOnlyUnreservedBytes() {
        #expect(SigV4Signer.encode("/a b/c$d~e_f.g-h/é", keepingSlashes: true) == "/a%20b/c%24d~e_f.g-h/%C3%A9")
        #expect(SigV4Signer.encode("a/b=c&d", keepingSlashes: false) == "a%2Fb%3Dc%26d")
    }

    @Test func timestampsAreUTCCivilDates() {
        #expect(SigV4Signer.timestamps(Date(timeIntervalSince1970: 0)) == ("19700101T000000Z", "19700101"))
        #expect(SigV4Signer.timestamps(Date(timeIntervalSince1970: 1_709_164_800)) == ("20240229T000000Z", "20240229"))
        #expect(SigV4Signer.timestamps(Date(timeIntervalSince1970: 4_102_444_799)) == ("20991231T235959Z", "20991231"))
    }
}
