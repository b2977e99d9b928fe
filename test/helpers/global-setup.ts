/**
 * Before any test: the Docker engine must answer and the session image must be there. A missing
 * engine is a failure, never a skip (CI installs and starts it in .ci/run).
 */
import { SESSION_IMAGE, docker, dockerAnswers, removeOwnedContainers } from './docker';

export default async function globalSetup(): Promise<void> {
  if (!(await dockerAnswers())) {
    throw new Error('docker engine is not answering: start dockerd (see README.md, "Running the tests")');
  }
  await docker('image', 'inspect', SESSION_IMAGE).catch(() => {
    throw new Error(`session image ${SESSION_IMAGE} is missing: run "node dist/deploy/berth.js image build"`);
  });
  // This run owns the containers its tests make; what runs that are over left behind goes now.
  process.env.BERTH_TEST_OWNER = String(process.pid);
  await removeOwnedContainers('stale');
}
