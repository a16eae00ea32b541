import { IsOptional, IsString, MaxLength } from 'class-validator';

/** A form parameter given twice arrives as an array and fails IsString: RFC 6749 §3.2 forbids repeats. */
export class TokenRequest {
  @IsString() @MaxLength(64) grant_type!: string;
  @IsOptional() @IsString() @MaxLength(512) refresh_token?: string;
  @IsOptional() @IsString() @MaxLength(2048) scope?: string;
  @IsOptional() @IsString() @MaxLength(256) client_id?: string;
  @IsOptional() @IsString() @MaxLength(1024) client_secret?: string;
}

export class TokenActionRequest {
  @IsString() @MaxLength(8192) token!: string;
  // Unknown hints are ignored: the token's own shape says what it is (RFC 7009 §2.1).
  @IsOptional() @IsString() @MaxLength(64) token_type_hint?: string;
  @IsOptional() @IsString() @MaxLength(256) client_id?: string;
  @IsOptional() @IsString() @MaxLength(1024) client_secret?: string;
}
