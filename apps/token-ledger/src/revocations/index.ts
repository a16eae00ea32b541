export { RevocationsController } from './revocations.controller';
export { RevocationsService, REVOCATIONS_OPTIONS, type RevocationsOptions } from './revocations.service';
