/** Global setup and teardown for the unit tests (npm run test:unit): they need no Docker engine. */
export default async function noEngine(): Promise<void> {
  // Unit tests touch no engine and leave no container: nothing to check or clean.
}
