import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, IsISO8601, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { API_KEY_NAME_MAX, API_KEY_SCOPES } from '@token-ledger/domain';

export class CreateApiKeyRequest {
  @ApiProperty({ description: 'what the key is for, e.g. "resource server: billing"', maxLength: API_KEY_NAME_MAX })
  @IsString() @MaxLength(API_KEY_NAME_MAX) name!: string;
  @ApiProperty({ type: [String], enum: [...API_KEY_SCOPES], description: 'admin grants every other scope; a key can only grant scopes it has itself' })
  @IsArray() @ArrayMinSize(1) @ArrayMaxSize(API_KEY_SCOPES.length) @IsString({ each: true }) @MaxLength(64, { each: true }) scopes!: string[];
  @ApiPropertyOptional({ description: 'ISO-8601 instant in the future; omitted = the key does not expire' })
  @IsOptional() @IsISO8601({ strict: true }) expiresAt?: string;
}

export class ListApiKeysQueryDto {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) cursor?: string;
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ description: 'wait (up to 2 s) until the list includes keys created up to this position (X-Event-Position of the create)' })
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) minPosition?: number;
}

/** An API key as the API shows it: never the key or its hash. */
export class ApiKeyView {
  @ApiProperty() keyId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: [String] }) scopes!: string[];
  @ApiProperty({ enum: ['active', 'revoked', 'expired'] }) status!: 'active' | 'revoked' | 'expired';
  @ApiProperty() createdAt!: string;
  @ApiProperty({ nullable: true, type: String }) expiresAt!: string | null;
  @ApiProperty({ nullable: true, type: String }) revokedAt!: string | null;
}

export class CreatedApiKeyView extends ApiKeyView {
  @ApiProperty({ description: 'the key itself, shown once: only its keyed hash is stored' }) key!: string;
}

/** Who the calling key is (GET /v1/api-keys/self): what a UI needs to show only what the scopes allow. */
export class SelfView {
  @ApiProperty({ nullable: true, type: String, description: 'null for the bootstrap admin token' }) keyId!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'null for the bootstrap admin token' }) name!: string | null;
  @ApiProperty({ type: [String], description: 'admin grants every other scope' }) scopes!: string[];
  @ApiProperty({ enum: ['api-key', 'admin-token'] }) principal!: 'api-key' | 'admin-token';
}
