import GRDB
import Hummingbird

/// Makes every refusal a JSON error: unknown routes and methods, and errors
/// from below the handlers, which Hummingbird would otherwise answer with
/// an empty body. Unexpected errors become a 500 that names no internals.
/// Failures are logged with the request's logger, whose `hb.request.id`
/// metadata ties the line to one request.
struct JSONErrors<Context: RequestContext>: RouterMiddleware {
    let metrics: RelayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as RelayError {
            throw error
        } catch let failure as StorageFailure {
            throw storageUnavailable(request, context, cause: failure.cause)
        } catch let error as DatabaseError {
            throw storageUnavailable(request, context, cause: error)
        } catch let error as HTTPResponseError where error.status == .notFound {
            if let allowed = Relay.methods(allowedOn: request.uri.path) {
                throw RelayError(.methodNotAllowed, code: "method_not_allowed",
                                 "\(request.uri.path) accepts \(allowed.map(\.rawValue).joined(separator: ", ")), not \(request.method)",
                                 headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")])
            }
            throw RelayError(.notFound, code: "not_found", "no such endpoint: \(request.method) \(request.uri.path)")
        } catch let error as HTTPResponseError {
            let code = switch error.status {
            case .notFound: "not_found"
            case .methodNotAllowed: "method_not_allowed"
            case .contentTooLarge: "too_large"
            default: "bad_request"
            }
            throw RelayError(error.status.code < 500 ? error.status : .internalServerError, code: code,
                             error.status == .notFound ? "no such endpoint: \(request.method) \(request.uri.path)" : "\(error.status)")
        } catch {
            context.logger.error("request failed: \(request.method) \(request.uri.path): \(error)")
            throw RelayError(.internalServerError, code: "internal", "the relay failed to answer; try again")
        }
    }

    /// Logs and counts a storage failure; the client gets 503 `storage_unavailable`.
    private func storageUnavailable(_ request: Request, _ context: Context, cause: any Error) -> RelayError {
        context.logger.error("storage failed: \(request.method) \(request.uri.path): \(cause)")
        metrics.storageFailed()
        return .storageUnavailable
    }
}
