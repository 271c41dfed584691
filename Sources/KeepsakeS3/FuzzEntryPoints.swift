/// The S3 client's readers of server answers, for the `s3-answer` fuzz target
/// (`Fuzz/`). Package access: not public API.
package enum S3FuzzEntryPoints {
    /// Reads `bytes` as each XML answer the client parses: listings, upload
    /// listings, errors and upload IDs. Returns normally whatever the input.
    package static func answer(_ bytes: [UInt8]) {
        _ = try? S3Client.objectListing(bytes)
        _ = try? S3Client.uploadListing(bytes)
        for name in ["Code", "Message", "UploadId"] { _ = S3XML.value(name, in: bytes) }
    }

    /// Answers as S3 servers send them, one of each kind.
    package static let seeds = [
        """
        <?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>\
        <Prefix>backups/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>\
        <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\
        <Contents><Key>backups/a&amp;b</Key><LastModified>2026-11-30T22:38:17.000Z</LastModified><ETag>&quot;d7066c7e&quot;</ETag>\
        <Size>20000000</Size><StorageClass>STANDARD</StorageClass></Contents>\
        <Contents><Key>backups/c</Key><LastModified>2026-11-30T22:38:17Z</LastModified><Size>0</Size></Contents></ListBucketResult>
        """,
        """
        <?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
        <Bucket>b</Bucket><IsTruncated>true</IsTruncated><NextKeyMarker>backups/x</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>\
        <Upload><Key>backups/x</Key><UploadId>u1</UploadId><Initiated>2026-11-30T22:38:17.000Z</Initiated></Upload>\
        </ListMultipartUploadsResult>
        """,
        """
        <?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>\
        <Resource>/b</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>
        """,
        """
        <?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
        <Bucket>b</Bucket><Key>backups/x</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>
        """,
    ]
}
