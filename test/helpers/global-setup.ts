/**
 * Before any test: the Docker engine must answer and the session image must be there. A missing
 * engine is a failure, never a skip (CI installs and starts it in .ci/run).
 */
import { SESSION_IMAGE, docker, dockerAnswers, removeTestContainers } from './docker';

export default async function globalSetup(): Promise<void> {
  if (!(await dockerAnswers())) {
    throw new Error('docker engine is not answering: start dockerd (see README.md, "Running the tests")');
  }
  await docker('image', 'inspect', SESSION_IMAGE).catch(() => {
    throw new Error(`session image ${SESSION_IMAGE} is missing: run "node dist/deploy/berth.js image build"`);
  });
  await removeTestContainers();
}
