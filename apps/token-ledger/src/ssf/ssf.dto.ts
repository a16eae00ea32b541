import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { SSF_EVENTS_SUPPORTED, SSF_POLL, SSF_PUSH } from '@token-ledger/domain';

/** OpenAPI shapes of the SSF 1.0 management API (§7, §8). Requests are read by ssf-wire.ts. */

export class SsfDeliveryRequest {
  @ApiProperty({ enum: [SSF_PUSH, SSF_POLL], description: 'push (RFC 8935) or poll (RFC 8936)' }) method!: string;
  @ApiPropertyOptional({ description: 'push: the receiver URL (https). poll: ignored — the transmitter sets it.' }) endpoint_url?: string;
  @ApiPropertyOptional({ description: 'push: the Authorization header value the transmitter sends; stored sealed, never returned. null removes it.', nullable: true })
  authorization_header?: string | null;
}

export class SsfDeliveryView {
  @ApiProperty({ enum: [SSF_PUSH, SSF_POLL] }) method!: string;
  @ApiProperty({ description: 'push: the receiver URL; poll: `{issuer}/ssf/poll/{stream_id}`' }) endpoint_url!: string;
}

export class SsfStreamConfigRequest {
  @ApiPropertyOptional({ description: 'PATCH / PUT: the stream to change' }) stream_id?: string;
  @ApiProperty({ oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }], description: 'the receiver(s): the aud of every SET' }) aud!: string | string[];
  @ApiProperty({ type: [String], description: 'event-type URIs the receiver wants' }) events_requested!: string[];
  @ApiProperty({ type: SsfDeliveryRequest }) delivery!: SsfDeliveryRequest;
  @ApiPropertyOptional({ maxLength: 1024 }) description?: string;
}

export class SsfStreamConfigView {
  @ApiProperty() stream_id!: string;
  @ApiProperty() iss!: string;
  @ApiProperty({ oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] }) aud!: string | string[];
  @ApiProperty({ type: [String], example: [...SSF_EVENTS_SUPPORTED] }) events_supported!: string[];
  @ApiProperty({ type: [String] }) events_requested!: string[];
  @ApiProperty({ type: [String], description: 'events_requested ∩ events_supported' }) events_delivered!: string[];
  @ApiProperty({ type: SsfDeliveryView }) delivery!: SsfDeliveryView;
  @ApiProperty({ description: 'seconds between two verification requests' }) min_verification_interval!: number;
  @ApiPropertyOptional() description?: string;
}

export class SsfStatusRequest {
  @ApiProperty() stream_id!: string;
  @ApiProperty({ enum: ['enabled', 'paused', 'disabled'] }) status!: string;
  @ApiPropertyOptional({ maxLength: 1024 }) reason?: string;
}

export class SsfStatusView {
  @ApiProperty() stream_id!: string;
  @ApiProperty({ enum: ['enabled', 'paused', 'disabled'] }) status!: string;
  @ApiPropertyOptional() reason?: string;
}

export class SsfSubjectRequest {
  @ApiProperty() stream_id!: string;
  @ApiProperty({
    description: 'RFC 9493 subject identifier: {format: iss_sub, iss (this issuer), sub} | {format: email, email} | {format: opaque, id (a client id)}',
    example: { format: 'email', email: 'alice@example.com' },
  })
  subject!: Record<string, string>;
  @ApiPropertyOptional({ description: 'add only; default true' }) verified?: boolean;
}

export class SsfVerifyRequest {
  @ApiProperty() stream_id!: string;
  @ApiPropertyOptional({ description: 'echoed in the verification SET' }) state?: string;
}
