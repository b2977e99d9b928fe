/** After every test: no container a test of this run made survives, whatever a test forgot. */
import { removeOwnedContainers } from './docker';

export default async function globalTeardown(): Promise<void> {
  await removeOwnedContainers('owner');
}
