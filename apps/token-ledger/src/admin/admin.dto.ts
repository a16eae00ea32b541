import { Type } from 'class-transformer';
import { IsArray, IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, MaxLength, MinLength, ValidateNested } from 'class-validator';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class RegisterClientRequest {
  @ApiProperty() @IsString() @MaxLength(128) clientId!: string;
  @ApiPropertyOptional({ enum: ['confidential', 'public'] }) @IsOptional() @IsIn(['confidential', 'public']) type?: 'confidential' | 'public';
  @ApiPropertyOptional({ description: 'at least 16 characters; generated (and returned once) when omitted' })
  @IsOptional() @IsString() @MinLength(16) @MaxLength(512) secret?: string;
  @ApiPropertyOptional({ type: [String] }) @IsOptional() @IsArray() @IsString({ each: true }) @MaxLength(256, { each: true }) allowedScopes?: string[];
  @ApiPropertyOptional() @IsOptional() @IsInt() accessTokenTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() refreshIdleTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() refreshAbsoluteTtl?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() reuseGraceSeconds?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() maxFamiliesPerSubject?: number;
  @ApiPropertyOptional({ description: 'RFC 7662 §4: may introspect every client\'s tokens (a resource server); default false: only its own' })
  @IsOptional() @IsBoolean() introspectAll?: boolean;
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
}

export class RequestContextDto {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) ip?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(512) userAgent?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(128) deviceId?: string;
}

export class IssueFamilyRequest {
  @ApiProperty() @IsString() @MinLength(1) @MaxLength(256) @Matches(/^[\x21-\x7e]+$/, { message: 'subject must be printable ASCII without spaces' }) subject!: string;
  @ApiProperty() @IsString() @MaxLength(128) clientId!: string;
  @ApiProperty({ description: 'space-delimited (RFC 6749 §3.3)' }) @IsString() @MaxLength(2048) scope!: string;
  @ApiPropertyOptional({ type: [String] }) @IsOptional() @IsArray() @IsString({ each: true }) @MaxLength(512, { each: true }) audience?: string[];
  @ApiPropertyOptional({ type: RequestContextDto }) @IsOptional() @ValidateNested() @Type(() => RequestContextDto) context?: RequestContextDto;
}

export class RevokeRequest {
  @ApiProperty({ example: 'logout' }) @IsString() @Matches(/^[a-z][a-z0-9_]{0,63}$/, { message: 'reason must be a lower-case word like logout, admin or password_change' }) reason!: string;
}
