import { createContext } from 'preact';
import type { Api, Principal } from './api';

export interface Session {
  api: Api;
  principal: Principal;
  /** Say something to screen readers and on screen (the status line). */
  announce(message: string): void;
}

export const SessionContext = createContext<Session>(null as unknown as Session);
