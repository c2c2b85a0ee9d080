#include "common/result.h"

namespace sandman {

const char* errorCode(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalid: return "invalid";
    case ErrorKind::kUnauthorized: return "unauthorized";
    case ErrorKind::kOverBudget: return "over_budget";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kConflict: return "conflict";
    case ErrorKind::kTooLarge: return "too_large";
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kNoSpace: return "insufficient_storage";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

int httpStatus(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalid: return 400;
    case ErrorKind::kUnauthorized: return 401;
    case ErrorKind::kOverBudget: return 402;
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kConflict: return 409;
    case ErrorKind::kTooLarge: return 413;
    case ErrorKind::kUnavailable: return 503;
    case ErrorKind::kNoSpace: return 507;
    case ErrorKind::kInternal: return 500;
  }
  return 500;
}

}  // namespace sandman
