// The operations console, mounted by the inbox server under /console.
export { consoleRoutes } from './console-routes';
export type { ConsoleOptions, ConsoleRouteOptions } from './console-routes';
