import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsInt, IsIP, IsOptional, IsString, Matches, MaxLength, MinLength, ValidateNested } from 'class-validator';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { JWK_THUMBPRINT_PATTERN, MAX_DEVICE_ID_LENGTH, MAX_SUBJECT_LENGTH, MAX_USER_AGENT_LENGTH } from '@token-ledger/domain';

export class RegisterClientRequest {
  @ApiProperty() @IsString() @MaxLength(128) clientId!: string;
  @ApiPropertyOptional({ enum: ['confidential', 'public'] }) @IsOptional() @IsIn(['confidential', 'public']) type?: 'confidential' | 'public';
  @ApiPropertyOptional({ description: 'at least 16 characters; generated (and returned once) when omitted' })
  @IsOptional() @IsString() @MinLength(16) @MaxLength(512) secret?: string;
  @ApiPropertyOptional({ type: [String], maxItems: 256 }) @IsOptional() @IsArray() @ArrayMaxSize(256) @IsString({ each: true }) @MaxLength(256, { each: true }) allowedScopes?: string[];
  @ApiPropertyOptional() @IsOptional() @IsInt() accessTokenTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() refreshIdleTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() refreshAbsoluteTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() reuseGraceSeconds?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() maxFamiliesPerSubject?: number;
  @ApiPropertyOptional({ description: 'RFC 7662 §4: may introspect every client\'s tokens (a resource server); default false: only its own' })
  @IsOptional() @IsBoolean() introspectAll?: boolean;
  @ApiPropertyOptional({ description: 'RFC 9449: every family of this client must be issued DPoP-bound (dpopJkt); default false' })
  @IsOptional() @IsBoolean() requireDpop?: boolean;
}

export class RotateClientSecretRequest {
  @ApiPropertyOptional({ description: 'seconds during which the replaced secret still authenticates (default 0: not at all)', minimum: 0, maximum: 2_592_000 })
  @IsOptional() @IsInt() overlapSeconds?: number;
}

export class DisableClientRequest {
  @ApiPropertyOptional({ description: 'also revoke every active family of the client (reason client_disabled); default false' })
  @IsOptional() @IsBoolean() revokeFamilies?: boolean;
}

/** PATCH /v1/clients/{id}: absent fields keep their value; only families issued afterwards get the new policy. */
export class ChangeClientPolicyRequest {
  @ApiPropertyOptional({ type: [String] }) @IsOptional() @IsArray() @IsString({ each: true }) @MaxLength(256, { each: true }) allowedScopes?: string[];
  @ApiPropertyOptional() @IsOptional() @IsInt() accessTokenTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() refreshIdleTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() refreshAbsoluteTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() reuseGraceSeconds?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() maxFamiliesPerSubject?: number;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() introspectAll?: boolean;
  @ApiPropertyOptional({ description: 'RFC 9449: every family of this client must be issued DPoP-bound (dpopJkt); default false' })
  @IsOptional() @IsBoolean() requireDpop?: boolean;
}

/** The end user's context at login, recorded on TokenFamilyIssued and read by the anomaly rules. */
export class RequestContextDto {
  @ApiPropertyOptional({ description: 'IPv4 or IPv6 address of the end user', example: '203.0.113.7' })
  @IsOptional() @IsString() @IsIP(undefined, { message: 'ip must be an IPv4 or IPv6 address' }) ip?: string;
  @ApiPropertyOptional({ maxLength: MAX_USER_AGENT_LENGTH }) @IsOptional() @IsString() @MaxLength(MAX_USER_AGENT_LENGTH) userAgent?: string;
  @ApiPropertyOptional({ maxLength: MAX_DEVICE_ID_LENGTH }) @IsOptional() @IsString() @MaxLength(MAX_DEVICE_ID_LENGTH) deviceId?: string;
}

export class IssueFamilyRequest {
  @ApiProperty({ maxLength: MAX_SUBJECT_LENGTH }) @IsString() @MinLength(1) @MaxLength(MAX_SUBJECT_LENGTH) @Matches(/^[\x21-\x7e]+$/, { message: 'subject must be printable ASCII without spaces' }) subject!: string;
  @ApiProperty() @IsString() @MaxLength(128) clientId!: string;
  @ApiProperty({ description: 'space-delimited (RFC 6749 §3.3)' }) @IsString() @MaxLength(2048) scope!: string;
  @ApiPropertyOptional({ type: [String], maxItems: 32 }) @IsOptional() @IsArray() @ArrayMaxSize(32) @IsString({ each: true }) @MaxLength(512, { each: true }) audience?: string[];
  @ApiPropertyOptional({ type: RequestContextDto }) @IsOptional() @ValidateNested() @Type(() => RequestContextDto) context?: RequestContextDto;
  @ApiPropertyOptional({
    description: 'RFC 9449: binds the family to this DPoP key — its JWK SHA-256 thumbprint (RFC 7638), base64url, 43 characters; every refresh must then carry a DPoP proof signed with it',
    pattern: JWK_THUMBPRINT_PATTERN.source,
  })
  @IsOptional() @IsString() @Matches(JWK_THUMBPRINT_PATTERN, { message: 'dpopJkt must be a JWK SHA-256 thumbprint (RFC 7638): 43 base64url characters' }) dpopJkt?: string;
}

export class RevokeRequest {
  @ApiProperty({ example: 'logout' }) @IsString() @Matches(/^[a-z][a-z0-9_]{0,63}$/, { message: 'reason must be a lower-case word like logout, admin or password_change' }) reason!: string;
}
