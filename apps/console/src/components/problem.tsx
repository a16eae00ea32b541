import { ApiError } from '../api';

/** An error from the API, said plainly; 403 names the missing scope (the server's detail does). */
export function Problem({ error }: { error: Error }) {
  const status = error instanceof ApiError ? error.status : undefined;
  return (
    <div class="problem" role="alert">
      <strong>{status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : status ? `Error ${status}` : 'Error'}</strong>
      <span>{error instanceof ApiError ? error.detail || error.title : error.message}</span>
    </div>
  );
}
