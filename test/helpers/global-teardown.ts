/** After every test: no container a test made survives, whatever a test forgot. */
import { removeTestContainers } from './docker';

export default async function globalTeardown(): Promise<void> {
  await removeTestContainers();
}
