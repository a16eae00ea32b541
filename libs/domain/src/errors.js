"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.DomainError = void 0;
exports.isDomainError = isDomainError;
class DomainError extends Error {
    code;
    name = 'DomainError';
    constructor(code, message) {
        super(message);
        this.code = code;
        // Keep instanceof working when compiled to ES5-style classes by other toolchains.
        Object.setPrototypeOf(this, new.target.prototype);
    }
}
exports.DomainError = DomainError;
function isDomainError(e) {
    return e instanceof DomainError;
}
