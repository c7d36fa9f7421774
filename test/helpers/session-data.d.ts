// The session fields the tests use, declared the way an app declares its own.
import 'express-session';

declare module 'express-session' {
  interface SessionData {
    user: string;
    counter: number;
    [key: string]: unknown;
  }
}
