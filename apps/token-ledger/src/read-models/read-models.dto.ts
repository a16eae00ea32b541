import { IsIn, IsInt, IsISO8601, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { Type } from 'class-transformer';
import { ApiPropertyOptional } from '@nestjs/swagger';

class PagedQuery {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) cursor?: string;
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ description: 'wait (up to 2 s) until the read models include this position' })
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) minPosition?: number;
}

export class PositionQuery {
  @ApiPropertyOptional() @IsOptional() @Type(() => Number) @IsInt() @Min(0) minPosition?: number;
}

export class SubjectFamiliesQuery extends PagedQuery {
  @ApiPropertyOptional({ enum: ['active', 'revoked', 'expired'] }) @IsOptional() @IsIn(['active', 'revoked', 'expired']) status?: string;
}

export class AuditQueryDto extends PagedQuery {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) subject?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(128) clientId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) familyId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) type?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) ip?: string;
  @ApiPropertyOptional({ description: 'ISO-8601, inclusive' }) @IsOptional() @IsISO8601({ strict: true }) from?: string;
  @ApiPropertyOptional({ description: 'ISO-8601, exclusive' }) @IsOptional() @IsISO8601({ strict: true }) to?: string;
  @ApiPropertyOptional({ enum: ['desc', 'asc'], default: 'desc', description: 'newest (desc) or oldest (asc) first' })
  @IsOptional() @IsIn(['desc', 'asc']) order?: 'desc' | 'asc';
}

export class AnomaliesQueryDto extends PagedQuery {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) subject?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) familyId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) rule?: string;
  @ApiPropertyOptional({ enum: ['low', 'medium', 'high', 'critical'] }) @IsOptional() @IsIn(['low', 'medium', 'high', 'critical']) severity?: string;
  @ApiPropertyOptional({ enum: ['open', 'acknowledged', 'dismissed'], description: 'triage status' })
  @IsOptional() @IsIn(['open', 'acknowledged', 'dismissed']) status?: string;
}

export class OverviewQueryDto extends PositionQuery {
  @ApiPropertyOptional({ description: 'ISO-8601 instant with offset, inclusive (default: 24 hours before to)' }) @IsOptional() @IsString() @MaxLength(64) from?: string;
  @ApiPropertyOptional({ description: 'ISO-8601 instant with offset, exclusive (default: now)' }) @IsOptional() @IsString() @MaxLength(64) to?: string;
  @ApiPropertyOptional({ enum: ['minute', 'hour', 'day'], default: 'hour', description: 'UTC buckets; at most 1000 of them' })
  @IsOptional() @IsIn(['minute', 'hour', 'day']) bucket?: 'minute' | 'hour' | 'day';
}
