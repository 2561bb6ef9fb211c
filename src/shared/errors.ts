/**
 * Typed errors thrown by services and the HTTP layer. One plugin (http/errors.ts) turns them into
 * application/problem+json; nothing else formats an error response.
 */
export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail: string,
    readonly errors?: FieldError[],
  ) {
    super(detail);
    this.name = new.target.name;
  }
}

export class BadRequest extends AppError {
  constructor(detail: string, errors?: FieldError[], code = 'invalid-request') {
    super(400, code, 'Bad Request', detail, errors);
  }
}
export class Unauthorized extends AppError {
  constructor(detail = 'A valid bearer token is required.') {
    super(401, 'unauthorized', 'Unauthorized', detail);
  }
}
export class Forbidden extends AppError {
  constructor(detail: string, code = 'forbidden') {
    super(403, code, 'Forbidden', detail);
  }
}
export class NotFound extends AppError {
  constructor(what = 'resource', code = 'not-found') {
    super(404, code, 'Not Found', `No ${what} with that id is visible to you.`);
  }
}
export class Conflict extends AppError {
  constructor(detail: string, code = 'conflict') {
    super(409, code, 'Conflict', detail);
  }
}
export class PreconditionFailed extends AppError {
  constructor(detail: string) {
    super(412, 'version-mismatch', 'Precondition Failed', detail);
  }
}
export class PreconditionRequired extends AppError {
  constructor(detail = 'This update needs an If-Match header with the ETag of the version you read.') {
    super(428, 'if-match-required', 'Precondition Required', detail);
  }
}
/** A clinical or business rule refuses the request (422). `code` is stable for clients to switch on. */
export class RuleViolation extends AppError {
  constructor(code: string, detail: string, errors?: FieldError[]) {
    super(422, code, 'Unprocessable Content', detail, errors);
  }
}
/** 503, answered with Retry-After: the database is unavailable, or (`code`) another resource is busy for now. */
export class ServiceUnavailable extends AppError {
  constructor(detail = 'The database is unavailable; try again shortly.', code = 'database-unavailable') {
    super(503, code, 'Service Unavailable', detail);
  }
}
