export * from './version';
export * from './ndjson';
export * from './session';
export * from './rpc';
export * from './events';
export * from './attach';
export * from './move';
export * from './trash';
